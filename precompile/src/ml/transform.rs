//! `post_transform`: the functions applied to raw scores, with onnxruntime's `f32` rounding
//! points. `exp` and `ln` are computed in `f64` by the pure-Rust `libm` and rounded once to
//! `f32` (correctly rounded but for rare double-rounding ties), so results do not depend on the
//! platform's math library.

use tract_onnx::tract_hir::internal::{bail, TractResult};

/// A `post_transform` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    /// Scores as they are.
    None,
    /// `1 / (1 + e^-x)` on each score.
    Logistic,
    /// Softmax over each row.
    Softmax,
    /// Softmax over each row, zeros left at zero.
    SoftmaxZero,
    /// The standard normal quantile of each score.
    Probit,
}

impl PostTransform {
    /// From the string form (opset 1–3 ops).
    pub fn parse(s: &str) -> TractResult<Self> {
        Ok(match s {
            "NONE" => Self::None,
            "LOGISTIC" => Self::Logistic,
            "SOFTMAX" => Self::Softmax,
            "SOFTMAX_ZERO" => Self::SoftmaxZero,
            "PROBIT" => Self::Probit,
            other => bail!("unknown post_transform {other:?}"),
        })
    }

    /// From the integer form of the opset-5 `TreeEnsemble`.
    pub fn from_code(code: i64) -> TractResult<Self> {
        Ok(match code {
            0 => Self::None,
            1 => Self::Softmax,
            2 => Self::Logistic,
            3 => Self::SoftmaxZero,
            4 => Self::Probit,
            other => bail!("unknown post_transform {other}"),
        })
    }

    /// Apply to a row of two or more scores (one score: see [`binary_pair`]).
    pub fn apply(self, scores: &mut [f32]) {
        match self {
            Self::None => {}
            Self::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            Self::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            Self::Softmax => softmax(scores),
            Self::SoftmaxZero => softmax_zero(scores),
        }
    }

    /// Units of compute one score costs (an `exp` is priced like 16 multiply-adds).
    pub fn cost_per_score(self) -> u64 {
        match self {
            Self::None => 0,
            _ => 16,
        }
    }
}

/// `exp` of an `f32`, through `f64`.
pub fn exp(x: f32) -> f32 {
    libm::exp(x as f64) as f32
}

/// Natural logarithm of an `f32`, through `f64`.
pub fn ln(x: f32) -> f32 {
    libm::log(x as f64) as f32
}

/// The logistic function, symmetric form: `1 / (1 + e^-|x|)`, mirrored for negative `x`.
pub fn logistic(x: f32) -> f32 {
    let v = 1.0 / (1.0 + exp(-x.abs()));
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// Softmax with the maximum subtracted first.
pub fn softmax(scores: &mut [f32]) {
    let max = scores
        .iter()
        .fold(-f32::MAX, |m, v| if *v > m { *v } else { m });
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = exp(*s - max);
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// Softmax that leaves (near-)zero scores out of the sum.
pub fn softmax_zero(scores: &mut [f32]) {
    let max = scores
        .iter()
        .fold(-f32::MAX, |m, v| if *v > m { *v } else { m });
    let exp_neg_max = exp(-max);
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        if *s > 0.000_000_1 || *s < -0.000_000_1 {
            *s = exp(*s - max);
            sum += *s;
        } else {
            *s *= exp_neg_max;
        }
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// The probit function, `√2 · erfinv(2x − 1)`, with the Winitzki approximation of `erfinv`
/// that onnxruntime uses.
pub fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

/// The approximation's constant π, as onnxruntime writes it (not `f32::consts::PI`).
#[allow(clippy::approx_constant)]
const APPROX_PI: f32 = 3.14159;

fn erf_inv(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = ln(x);
    let v = 2.0 / (APPROX_PI * 0.147f32) + 0.5 * log;
    let v2 = 1.0 / 0.147f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sign * v3.sqrt()
}

/// How a single binary score becomes two class scores (onnxruntime's `add_second_class`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondClass {
    /// Scores are probabilities: `[1 − s, s]`.
    Complement,
    /// Scores are margins: `[−s, s]` (or the logistic of each, under LOGISTIC).
    Margin,
}

/// Two class scores from one binary score `s`, after `transform`.
pub fn binary_pair(s: f32, transform: PostTransform, second: SecondClass) -> [f32; 2] {
    match (second, transform) {
        (SecondClass::Complement, _) => [1.0 - s, s],
        (_, PostTransform::Logistic) => [logistic(-s), logistic(s)],
        (SecondClass::Margin, _) => [-s, s],
    }
}
