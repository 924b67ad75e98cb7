//! An inspector that records at most a number of struct-logger steps.
//!
//! The default tracer keeps every step (opcode, gas, stack, storage) in memory: a 2^24-gas loop
//! is millions of steps and gigabytes. [`StepLimit`] forwards everything to revm-inspectors'
//! `TracingInspector` but stops forwarding steps once the limit is reached; the transaction
//! itself runs to the end, unchanged.

use alloy_primitives::{Address, Log, U256};
use revm::context_interface::ContextTr;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm::Inspector;
use revm_inspectors::tracing::TracingInspector;

/// A `TracingInspector` that records at most `limit` steps.
#[derive(Debug)]
pub(super) struct StepLimit {
    /// The tracer.
    pub inner: TracingInspector,
    limit: u64,
    recorded: u64,
    /// The step in progress is not recorded.
    skipping: bool,
    /// Some steps were not recorded.
    pub truncated: bool,
}

impl StepLimit {
    /// Record at most `limit` steps with `inner`.
    pub(super) fn new(inner: TracingInspector, limit: u64) -> Self {
        Self {
            inner,
            limit,
            recorded: 0,
            skipping: false,
            truncated: false,
        }
    }
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for StepLimit
where
    TracingInspector: Inspector<CTX, EthInterpreter>,
{
    fn initialize_interp(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        self.inner.initialize_interp(interp, context);
    }

    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        self.skipping = self.recorded >= self.limit;
        if self.skipping {
            self.truncated = true;
            return;
        }
        self.recorded += 1;
        self.inner.step(interp, context);
    }

    fn step_end(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX) {
        if !self.skipping {
            self.inner.step_end(interp, context);
        }
    }

    fn log(&mut self, context: &mut CTX, log: Log) {
        self.inner.log(context, log);
    }

    fn log_full(&mut self, interp: &mut Interpreter<EthInterpreter>, context: &mut CTX, log: Log) {
        self.inner.log_full(interp, context, log);
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.inner.call(context, inputs)
    }

    fn call_end(&mut self, context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.inner.call_end(context, inputs, outcome);
    }

    fn create(&mut self, context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.inner.create(context, inputs)
    }

    fn create_end(
        &mut self,
        context: &mut CTX,
        inputs: &CreateInputs,
        outcome: &mut CreateOutcome,
    ) {
        self.inner.create_end(context, inputs, outcome);
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        Inspector::<CTX, EthInterpreter>::selfdestruct(&mut self.inner, contract, target, value);
    }
}
