//! `verinfer infer`: run a model through `predict` and print its outputs.

use super::model::get_model;
use alloy_primitives::{Bytes, B256, I256, U256};
use alloy_sol_types::{SolCall, SolInterface};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use verinfer_node::client::{Client, ClientError};
use verinfer_node::tensor::format_fixed;
use verinfer_node::wire::{DimJson, TensorSpecJson};
use verinfer_precompile::abi::{IInference, Tensor};
use verinfer_precompile::ADDRESS;

#[derive(clap::Args)]
pub(crate) struct InferArgs {
    /// Model id (0x…) as `verinfer model list` shows it.
    model: B256,
    /// One input tensor's values, comma-separated decimals (repeat once per model input, in order).
    #[arg(short, long = "input", value_name = "VALUES", required = true)]
    inputs: Vec<String>,
    /// One input's shape, e.g. `1x12` (repeat once per input, in order). Needed only when an
    /// input has more than one symbolic dimension: one is worked out from the value count.
    #[arg(long = "shape", value_name = "D1xD2…")]
    shapes: Vec<String>,
    /// Decimals of the outputs.
    #[arg(short, long, default_value_t = 6)]
    decimals: u8,
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Print the outputs as JSON.
    #[arg(long)]
    json: bool,
}

/// Parse `1x12` (or `1,12`) into a shape.
fn parse_shape(text: &str) -> Result<Vec<u32>> {
    text.split(['x', ','])
        .map(|d| {
            d.trim()
                .parse::<u32>()
                .with_context(|| format!("{text:?} is not a shape such as 1x12"))
        })
        .collect()
}

/// The shape of an input given `count` values: the model's, with its one symbolic dimension (if
/// any) worked out from the count.
fn input_shape(spec: &TensorSpecJson, count: usize) -> Result<Vec<u32>> {
    let symbolic: Vec<usize> = (0..spec.dims.len())
        .filter(|&i| matches!(spec.dims[i], DimJson::Symbol(_)))
        .collect();
    let mut shape: Vec<usize> = spec.shape.clone();
    match symbolic[..] {
        [] => {}
        [axis] => {
            let rest: usize = (0..shape.len())
                .filter(|&i| i != axis)
                .map(|i| shape[i])
                .product();
            if rest == 0 || count % rest != 0 {
                bail!(
                    "{count} values do not fill a shape {:?} with dimension {axis} free",
                    spec.dims
                );
            }
            shape[axis] = count / rest;
        }
        _ => bail!(
            "it has {} symbolic dimensions ({:?}): give its shape with --shape",
            symbolic.len(),
            spec.dims
        ),
    }
    shape
        .into_iter()
        .map(|d| u32::try_from(d).context("an input dimension past u32"))
        .collect()
}

/// Parse "1.5,-2,0.25,3e-4" into fixed-point integers with the fewest decimals that are exact.
pub(crate) fn parse_values(text: &str) -> Result<(Vec<I256>, u8)> {
    let parts = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| parse_decimal(p).with_context(|| format!("{p:?} is not a decimal number")))
        .collect::<Result<Vec<_>>>()?;
    let decimals = parts.iter().map(|(_, d)| *d).max().unwrap_or(0);
    let Ok(decimals @ 0..=38) = u8::try_from(decimals) else {
        bail!("at most 38 decimals ({decimals} needed)");
    };
    let values = parts
        .iter()
        .map(|(digits, d)| scale_up(*digits, u32::from(decimals) - d))
        .collect::<Result<_>>()?;
    Ok((values, decimals))
}

/// One decimal (`-12.5`, `1e40`, `2.5E-3`) as (digits, decimals): value = digits / 10^decimals.
pub(crate) fn parse_decimal(text: &str) -> Result<(I256, u32)> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().context("bad exponent")?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let int = int.strip_prefix('+').unwrap_or(int);
    let unsigned = int.strip_prefix('-').unwrap_or(int);
    if unsigned.is_empty() && frac.is_empty()
        || !unsigned
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
    {
        bail!("expected digits, an optional fraction and an optional exponent");
    }
    let digits: I256 = format!("{int}{frac}")
        .parse()
        .context("value too large for int256")?;
    let decimals = frac.len() as i64 - exponent as i64;
    if decimals >= 0 {
        return Ok((digits, u32::try_from(decimals)?));
    }
    Ok((scale_up(digits, u32::try_from(-decimals)?)?, 0))
}

/// `value × 10^places`, refused past int256.
pub(crate) fn scale_up(value: I256, places: u32) -> Result<I256> {
    I256::try_from(10u64)?
        .checked_pow(U256::from(places))
        .and_then(|scale| value.checked_mul(scale))
        .context("value too large for int256")
}

pub(crate) fn infer(args: &InferArgs) -> Result<()> {
    let client = Client::new(&args.rpc)?;
    let model = get_model(&client, &args.model.to_string())?;
    let specs = model.inputs;
    if specs.len() != args.inputs.len() {
        bail!(
            "the model takes {} inputs, {} given (one --input per input)",
            specs.len(),
            args.inputs.len()
        );
    }
    if !args.shapes.is_empty() && args.shapes.len() != specs.len() {
        bail!(
            "the model takes {} inputs, {} --shape given (one per input, or none)",
            specs.len(),
            args.shapes.len()
        );
    }
    let mut tensors = Vec::new();
    for (i, (spec, text)) in specs.iter().zip(&args.inputs).enumerate() {
        let (values, decimals) = parse_values(text)?;
        let shape = match args.shapes.get(i) {
            Some(shape) => parse_shape(shape)?,
            None => input_shape(spec, values.len())
                .with_context(|| format!("input {i} ({})", spec.name))?,
        };
        tensors.push(Tensor {
            shape,
            values,
            decimals,
        });
    }
    let call = IInference::predictCall {
        modelId: args.model,
        inputs: tensors,
        outputDecimals: args.decimals,
    };
    let request = json!({"to": ADDRESS, "data": Bytes::from(call.abi_encode())});
    let output: Bytes = match client.call("eth_call", json!([request, "latest"])) {
        Ok(out) => out,
        Err(ClientError::Rpc {
            message,
            data: Some(data),
            ..
        }) => {
            let data: Bytes = serde_json::from_value(data).unwrap_or_default();
            match IInference::IInferenceErrors::abi_decode(&data) {
                Ok(error) => bail!("{message}: {}", describe_error(&error)),
                Err(_) => bail!("{message}"),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let outputs = IInference::predictCall::abi_decode_returns(&output)
        .context("decoding predict's outputs")?;
    if args.json {
        let json: Vec<Value> = outputs
            .iter()
            .map(|t| json!({"shape": t.shape, "values": t.values.iter().map(|v| format_fixed(*v, t.decimals)).collect::<Vec<_>>()}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for (i, t) in outputs.iter().enumerate() {
            let values: Vec<String> = t
                .values
                .iter()
                .map(|v| format_fixed(*v, t.decimals))
                .collect();
            out!("output {i} {:?}: [{}]", t.shape, values.join(", "));
        }
    }
    Ok(())
}

/// A precompile error by name with its fields, as a Solidity developer reads it.
pub(crate) fn describe_error(error: &IInference::IInferenceErrors) -> String {
    use IInference::IInferenceErrors as E;
    match error {
        E::UnknownSelector(e) => {
            format!("UnknownSelector({}): not a precompile function", e.selector)
        }
        E::MalformedCalldata(e) => format!("MalformedCalldata: {}", e.reason),
        E::UnknownModel(e) => format!("UnknownModel({}): the node has no such model", e.modelId),
        E::WrongInputCount(e) => {
            format!(
                "WrongInputCount: the model takes {} inputs, {} given",
                e.expected, e.got
            )
        }
        E::ShapeMismatch(e) => format!(
            "ShapeMismatch: input {} expects shape {:?}, got {:?}",
            e.input, e.expected, e.got
        ),
        E::DimensionOutOfBounds(e) => format!(
            "DimensionOutOfBounds: input {} dimension {} is {}, the model takes 1 to {}",
            e.input, e.axis, e.got, e.max
        ),
        E::SymbolMismatch(e) => format!(
            "SymbolMismatch: input {} dimension {} is {} = {}, but an earlier input set it to {}",
            e.input, e.axis, e.symbol, e.got, e.expected
        ),
        E::ValueCountMismatch(e) => format!(
            "ValueCountMismatch: input {} has {} values, its shape needs {}",
            e.input, e.got, e.expected
        ),
        E::TooManyElements(e) => {
            format!("TooManyElements: {} values, at most {}", e.got, e.limit)
        }
        E::DecimalsTooLarge(e) => {
            format!(
                "DecimalsTooLarge: {} decimals, at most {}",
                e.decimals, e.limit
            )
        }
        E::ValueOutOfRange(e) => format!(
            "ValueOutOfRange: input {} value {} does not fit the model's element type",
            e.input, e.index
        ),
        E::NonFiniteOutput(e) => format!(
            "NonFiniteOutput: output {} value {} is NaN or infinite",
            e.output, e.index
        ),
        E::InferenceFailed(e) => format!("InferenceFailed: {}", e.reason),
        E::NotDirectCall(_) => "NotDirectCall: infer needs a direct CALL".into(),
        E::ValueNotAccepted(_) => "ValueNotAccepted: the precompile takes no ether".into(),
        E::UnknownInference(e) => format!("UnknownInference({}): no such record", e.id),
        E::PrecompileUnavailable(e) => format!("PrecompileUnavailable: {}", e.hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Vec<String>, u8) {
        let (values, decimals) = parse_values(text).unwrap();
        (values.iter().map(|v| v.to_string()).collect(), decimals)
    }

    #[test]
    fn decimals_and_exponents() {
        assert_eq!(
            parsed("1.5,-2,0.25"),
            (vec!["150".into(), "-200".into(), "25".into()], 2)
        );
        assert_eq!(
            parsed("1e3,2.5E-2,+4"),
            (vec!["1000000".into(), "25".into(), "4000".into()], 3)
        );
        assert_eq!(parsed("1e40").0, vec![format!("1{}", "0".repeat(40))]);
        assert_eq!(parsed("-0.5"), (vec!["-5".into()], 1));
        for bad in ["a", "1.2.3", "1e", "--1", ".", "1e-39", "1e80"] {
            assert!(parse_values(bad).is_err(), "{bad} parsed");
        }
    }
}
