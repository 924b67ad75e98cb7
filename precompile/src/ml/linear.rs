//! `LinearClassifier` and `LinearRegressor`: `score_j = Σ_k x_k·w_jk + b_j`.
//!
//! The dot product runs over features in index order with fused multiply-adds (`f32::mul_add`,
//! exact on every platform), then adds the intercept: the order and rounding of onnxruntime's
//! GEMM on one row.

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attr;
use super::op::{classifier_facts, classify, fact_rows, row_count, rows, tensor, Kernel, MlOp};
use super::transform::{binary_pair, PostTransform, SecondClass};

pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("LinearClassifier", classifier);
    reg.insert("LinearRegressor", regressor);
}

/// `coefficients` as `targets` rows of `features`, and one intercept per row.
#[derive(Clone, Debug)]
pub struct Linear {
    coefficients: Vec<f32>,
    intercepts: Vec<f32>,
    targets: usize,
    features: usize,
    transform: PostTransform,
}

impl Linear {
    fn new(node: &NodeProto, targets: usize) -> TractResult<Self> {
        let coefficients = attr::floats(node, "coefficients")?;
        let mut intercepts = attr::floats(node, "intercepts")?;
        ensure!(targets > 0, "a linear model needs at least one target");
        ensure!(
            !coefficients.is_empty() && coefficients.len() % targets == 0,
            "{} coefficients do not split into {targets} targets",
            coefficients.len()
        );
        if intercepts.is_empty() {
            intercepts = vec![0.0; targets];
        }
        ensure!(
            intercepts.len() == targets,
            "{} intercepts for {targets} targets",
            intercepts.len()
        );
        Ok(Linear {
            features: coefficients.len() / targets,
            coefficients,
            intercepts,
            targets,
            transform: PostTransform::parse(&attr::string(node, "post_transform", "NONE"))?,
        })
    }

    /// Raw scores of one row.
    pub fn scores(&self, x: &[f32]) -> Vec<f32> {
        (0..self.targets)
            .map(|j| {
                let w = &self.coefficients[j * self.features..(j + 1) * self.features];
                let dot = x
                    .iter()
                    .zip(w)
                    .fold(0.0f32, |acc, (x, w)| x.mul_add(*w, acc));
                dot + self.intercepts[j]
            })
            .collect()
    }

    fn check_input(&self, op: &str, fact: &TypedFact) -> TractResult<TDim> {
        let (n, c) = fact_rows(fact)?;
        ensure!(
            c == self.features,
            "{op} expects {} features, input has {c}",
            self.features
        );
        Ok(n)
    }

    fn units(&self, n: &TDim) -> u64 {
        let per_row =
            self.targets as u64 * (self.features as u64 + self.transform.cost_per_score() + 1);
        row_count(n) * per_row
    }
}

/// A linear regressor: scores, then `post_transform`.
#[derive(Clone, Debug)]
pub struct LinearRegressor(Linear);

impl Kernel for LinearRegressor {
    fn name(&self) -> &'static str {
        "LinearRegressor"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = self.0.check_input(self.name(), inputs[0])?;
        Ok(tvec!(f32::fact([n, self.0.targets.into()])))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (n, c, x) = rows(&inputs[0])?;
        let mut out = Vec::with_capacity(n * self.0.targets);
        for r in 0..n {
            let mut scores = self.0.scores(&x[r * c..(r + 1) * c]);
            if scores.len() == 1 {
                if self.0.transform == PostTransform::Probit {
                    scores[0] = super::transform::probit(scores[0]);
                } else if self.0.transform == PostTransform::Logistic {
                    scores[0] = super::transform::logistic(scores[0]);
                }
            } else {
                self.0.transform.apply(&mut scores);
            }
            out.extend(scores);
        }
        Ok(tvec!(tensor(&[n, self.0.targets], out)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(self.0.units(&fact_rows(inputs[0])?.0))
    }
}

/// A linear classifier: scores, the arg-max label, then `post_transform`.
#[derive(Clone, Debug)]
pub struct LinearClassifier {
    linear: Linear,
    labels: Vec<i64>,
}

impl LinearClassifier {
    /// One score for two labels: the second class's score is derived from the first.
    fn adds_second_class(&self) -> bool {
        self.linear.targets == 1 && self.labels.len() == 2
    }

    fn outputs_per_row(&self) -> usize {
        if self.adds_second_class() {
            2
        } else {
            self.linear.targets
        }
    }

    fn row(&self, x: &[f32]) -> (i64, Vec<f32>) {
        let mut scores = self.linear.scores(x);
        let label = if scores.len() == 1 {
            let (negative, positive) = match self.labels.as_slice() {
                [n, p] => (*n, *p),
                _ => (0, 1),
            };
            if scores[0] > 0.0 {
                positive
            } else {
                negative
            }
        } else {
            let mut best = 0;
            for (j, s) in scores.iter().enumerate().skip(1) {
                if *s > scores[best] {
                    best = j;
                }
            }
            self.labels.get(best).copied().unwrap_or(best as i64)
        };
        if self.adds_second_class() {
            // onnxruntime expands one score to two without transforming it (but for PROBIT,
            // which transforms the score and leaves the second slot at zero).
            let s = scores[0];
            scores = match self.linear.transform {
                PostTransform::Probit => vec![super::transform::probit(s), 0.0],
                t => binary_pair(s, t, SecondClass::Complement).to_vec(),
            };
        } else {
            self.linear.transform.apply(&mut scores);
        }
        (label, scores)
    }
}

impl Kernel for LinearClassifier {
    fn name(&self) -> &'static str {
        "LinearClassifier"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = self.linear.check_input(self.name(), inputs[0])?;
        Ok(classifier_facts(n, self.outputs_per_row()))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        classify(&inputs[0], self.outputs_per_row(), |x| self.row(x))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(self.linear.units(&fact_rows(inputs[0])?.0))
    }
}

fn regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let targets = attr::int(node, "targets", 1).max(1) as usize;
    Ok(MlOp::boxed(
        node,
        LinearRegressor(Linear::new(node, targets)?),
    ))
}

fn classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    ensure!(
        attr::strings(node, "classlabels_strings").is_empty(),
        "string class labels cannot cross the ABI"
    );
    let targets = attr::floats(node, "intercepts")?.len().max(1);
    Ok(MlOp::boxed(
        node,
        LinearClassifier {
            linear: Linear::new(node, targets)?,
            labels: attr::ints(node, "classlabels_ints")?,
        },
    ))
}
