//! The precompile's integration tests, one module per concern, linked into one test binary.
//! Run one module with a filter: `cargo test --release -p verinfer-precompile --test it -- fuzz::`.

mod admission;
mod const_inputs;
mod fuzz;
mod real_models;
mod torch_models;
