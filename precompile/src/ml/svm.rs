//! `SVMClassifier` and `SVMRegressor`: kernel machines over support vectors (or, without
//! them, linear machines over the coefficients).
//!
//! Kernels are computed per support vector over features in index order; the pairwise
//! (one-vs-one) decision values of a classifier are summed in `f64` as onnxruntime does, votes
//! pick the label, and Platt probabilities (`prob_a`, `prob_b`) go through the pairwise
//! coupling of Wu, Lin and Weng (libsvm's `multiclass_probability`).

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attr;
use super::op::{classifier_facts, classify, fact_rows, row_count, rows, tensor, Kernel, MlOp};
use super::transform::{binary_pair, exp, logistic, PostTransform, SecondClass};

pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("SVMClassifier", classifier);
    reg.insert("SVMRegressor", regressor);
}

/// The kernel function and its parameters `[gamma, coef0, degree]`.
#[derive(Clone, Copy, Debug)]
enum KernelFn {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl KernelFn {
    fn parse(node: &NodeProto) -> TractResult<Self> {
        let params = attr::floats(node, "kernel_params")?;
        let p = |i: usize| params.get(i).copied().unwrap_or(0.0);
        Ok(match attr::string(node, "kernel_type", "LINEAR").as_str() {
            "LINEAR" => Self::Linear,
            "POLY" => Self::Poly {
                gamma: p(0),
                coef0: p(1),
                degree: p(2),
            },
            "RBF" => Self::Rbf { gamma: p(0) },
            "SIGMOID" => Self::Sigmoid {
                gamma: p(0),
                coef0: p(1),
            },
            other => bail!("unknown kernel_type {other:?}"),
        })
    }

    fn eval(self, x: &[f32], v: &[f32]) -> f32 {
        let dot = || x.iter().zip(v).fold(0.0f32, |acc, (a, b)| acc + a * b);
        match self {
            Self::Linear => dot(),
            Self::Poly {
                gamma,
                coef0,
                degree,
            } => libm::pow((gamma * dot() + coef0) as f64, degree as f64) as f32,
            Self::Rbf { gamma } => {
                let d = x.iter().zip(v).fold(0.0f32, |acc, (a, b)| {
                    let d = a - b;
                    acc + d * d
                });
                exp(-gamma * d)
            }
            Self::Sigmoid { gamma, coef0 } => libm::tanh((gamma * dot() + coef0) as f64) as f32,
        }
    }

    /// Units per support vector: scalar work per feature and an `exp`, `pow` or `tanh`,
    /// calibrated like the trees' (10 units per scalar operation, 160 per transcendental).
    fn units(self, features: usize) -> u64 {
        20 * features as u64 + 160
    }
}

/// Support vectors (`vectors` rows of `features`).
#[derive(Clone, Debug)]
struct Supports {
    kernel: KernelFn,
    vectors: Vec<f32>,
    features: usize,
}

impl Supports {
    fn kernels(&self, x: &[f32]) -> Vec<f32> {
        self.vectors
            .chunks_exact(self.features.max(1))
            .map(|v| self.kernel.eval(x, v))
            .collect()
    }

    fn count(&self) -> usize {
        self.vectors.len() / self.features.max(1)
    }
}

/// An SVM regressor (epsilon-SVR, nu-SVR or one-class).
#[derive(Clone, Debug)]
pub struct SvmRegressor {
    supports: Option<Supports>,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
    features: usize,
}

impl Kernel for SvmRegressor {
    fn name(&self) -> &'static str {
        "SVMRegressor"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (n, c) = fact_rows(inputs[0])?;
        ensure!(
            c == self.features,
            "SVMRegressor expects {} features, input has {c}",
            self.features
        );
        Ok(tvec!(f32::fact([n, 1.into()])))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (n, c, x) = rows(&inputs[0])?;
        let mut out = Vec::with_capacity(n);
        for r in 0..n {
            let x = &x[r * c..(r + 1) * c];
            let terms = match &self.supports {
                Some(s) => s.kernels(x),
                None => x.to_vec(),
            };
            let sum = terms
                .iter()
                .zip(&self.coefficients)
                .fold(0.0f32, |acc, (k, w)| acc + k * w);
            let score = sum + self.rho;
            out.push(match (self.one_class, score > 0.0) {
                (false, _) => score,
                (true, true) => 1.0,
                (true, false) => -1.0,
            });
        }
        Ok(tvec!(tensor(&[n, 1], out)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        let (n, _) = fact_rows(inputs[0])?;
        let per_row = match &self.supports {
            Some(s) => s.count() as u64 * (s.kernel.units(s.features) + 1),
            None => self.features as u64,
        };
        Ok(row_count(&n) * per_row)
    }
}

/// An SVM classifier: one-vs-one with votes (support vectors), or linear.
#[derive(Clone, Debug)]
pub struct SvmClassifier {
    supports: Option<Supports>,
    /// Support vectors per class (empty in linear mode).
    per_class: Vec<usize>,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    labels: Vec<i64>,
    features: usize,
    transform: PostTransform,
    weights_all_positive: bool,
}

impl SvmClassifier {
    fn classes(&self) -> usize {
        self.labels.len()
    }

    fn pairs(&self) -> usize {
        self.classes() * (self.classes() - 1) / 2
    }

    fn scores_per_row(&self) -> usize {
        match (&self.supports, self.prob_a.is_empty()) {
            (Some(_), true) if self.classes() > 2 => self.pairs(),
            (Some(_), true) => 2,
            _ => self.classes(),
        }
    }

    fn row(&self, x: &[f32]) -> (i64, Vec<f32>) {
        let classes = self.classes();
        let Some(supports) = &self.supports else {
            // Linear mode: one score per class, every class offset by rho[0].
            let mut scores: Vec<f32> = (0..classes)
                .map(|j| {
                    let w = &self.coefficients[j * self.features..(j + 1) * self.features];
                    x.iter().zip(w).fold(0.0f32, |acc, (a, b)| acc + a * b) + self.rho[0]
                })
                .collect();
            let (best, max) = first_max(&scores);
            let label = if classes == 2 {
                self.binary_label(max, best)
            } else {
                self.labels[best]
            };
            self.transform.apply(&mut scores);
            return (label, scores);
        };
        let kernels = supports.kernels(x);
        let starts: Vec<usize> = self
            .per_class
            .iter()
            .scan(0, |start, n| {
                let s = *start;
                *start += n;
                Some(s)
            })
            .collect();
        let total = supports.count();
        let mut votes = vec![0u64; classes];
        let mut decisions = Vec::with_capacity(self.pairs());
        let mut pair = 0;
        for i in 0..classes - 1 {
            for j in i + 1..classes {
                let mut sum = 0.0f64;
                for m in 0..self.per_class[i] {
                    let k = starts[i] + m;
                    sum += (self.coefficients[total * (j - 1) + k] * kernels[k]) as f64;
                }
                for m in 0..self.per_class[j] {
                    let k = starts[j] + m;
                    sum += (self.coefficients[total * i + k] * kernels[k]) as f64;
                }
                sum += self.rho[pair] as f64;
                pair += 1;
                decisions.push(sum as f32);
                votes[if sum > 0.0 { i } else { j }] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .fold(0, |b, (k, v)| if *v > votes[b] { k } else { b });
        if !self.prob_a.is_empty() {
            let mut probabilities = self.pairwise_probabilities(&decisions);
            self.transform.apply(&mut probabilities);
            return (self.labels[best], probabilities);
        }
        let label = if classes == 2 {
            self.binary_label(0.0, best)
        } else {
            self.labels[best]
        };
        if classes > 2 {
            self.transform.apply(&mut decisions);
            return (label, decisions);
        }
        // Two classes, no probabilities: one decision value, expanded as onnxruntime does.
        let s = decisions[0];
        let scores = match self.transform {
            PostTransform::None => binary_pair(s, self.transform, SecondClass::Margin),
            PostTransform::Probit => [super::transform::probit(s), 0.0],
            t => binary_pair(s, t, SecondClass::Complement),
        };
        (label, scores.to_vec())
    }

    fn binary_label(&self, max: f32, best: usize) -> i64 {
        if (self.weights_all_positive && max >= 0.5) || (max > 0.0 && !self.weights_all_positive) {
            self.labels[1]
        } else {
            self.labels[best]
        }
    }

    fn pairwise_probabilities(&self, decisions: &[f32]) -> Vec<f32> {
        let k = self.classes();
        let mut r = vec![0.0f32; k * k];
        let mut index = 0;
        for i in 0..k - 1 {
            for j in i + 1..k {
                let p = 1.0 - logistic(decisions[index] * self.prob_a[index] + self.prob_b[index]);
                let p = p.clamp(1.0e-7, 1.0 - 1.0e-7);
                r[i * k + j] = p;
                r[j * k + i] = 1.0 - p;
                index += 1;
            }
        }
        multiclass_probability(k, &r)
    }
}

/// Index and value of the first maximum.
fn first_max(values: &[f32]) -> (usize, f32) {
    values.iter().enumerate().fold(
        (0, values[0]),
        |(b, m), (k, v)| if *v > m { (k, *v) } else { (b, m) },
    )
}

/// Class probabilities from pairwise ones (Wu, Lin and Weng 2004, method 2), in `f32`.
fn multiclass_probability(k: usize, r: &[f32]) -> Vec<f32> {
    let mut q = vec![0.0f32; k * k];
    let mut qp = vec![0.0f32; k];
    let mut p = vec![1.0 / k as f32; k];
    for t in 0..k {
        for j in 0..t {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = q[j * k + t];
        }
        for j in t + 1..k {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    let eps = 0.005 / k as f32;
    for _ in 0..100 {
        let mut pqp = 0.0f32;
        for t in 0..k {
            qp[t] = 0.0;
            for j in 0..k {
                qp[t] += q[t * k + j] * p[j];
            }
            pqp += p[t] * qp[t];
        }
        let max_error = qp.iter().fold(0.0f32, |m, v| m.max((v - pqp).abs()));
        if max_error < eps {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t * k + t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
    p
}

impl Kernel for SvmClassifier {
    fn name(&self) -> &'static str {
        "SVMClassifier"
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (n, c) = fact_rows(inputs[0])?;
        ensure!(
            c == self.features,
            "SVMClassifier expects {} features, input has {c}",
            self.features
        );
        Ok(classifier_facts(n, self.scores_per_row()))
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        classify(&inputs[0], self.scores_per_row(), |x| self.row(x))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        let (n, _) = fact_rows(inputs[0])?;
        let k = self.classes() as u64;
        let per_row = match &self.supports {
            Some(s) => s.count() as u64 * (s.kernel.units(s.features) + k) + 100 * k * k,
            None => k * self.features as u64,
        };
        Ok(row_count(&n) * per_row)
    }
}

fn supports(node: &NodeProto, count: usize) -> TractResult<Option<Supports>> {
    if count == 0 {
        return Ok(None);
    }
    let vectors = attr::floats(node, "support_vectors")?;
    ensure!(
        !vectors.is_empty() && vectors.len() % count == 0,
        "{} support vector values do not split into {count} vectors",
        vectors.len()
    );
    Ok(Some(Supports {
        kernel: KernelFn::parse(node)?,
        features: vectors.len() / count,
        vectors,
    }))
}

fn regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let count = usize::try_from(attr::int(node, "n_supports", 0)).unwrap_or(0);
    let coefficients = attr::floats(node, "coefficients")?;
    let supports = supports(node, count)?;
    let features = supports.as_ref().map_or(coefficients.len(), |s| s.features);
    if supports.is_some() {
        ensure!(
            coefficients.len() == count,
            "{} coefficients for {count} support vectors",
            coefficients.len()
        );
    }
    let rho = attr::floats(node, "rho")?;
    Ok(MlOp::boxed(
        node,
        SvmRegressor {
            supports,
            coefficients,
            rho: rho.first().copied().unwrap_or(0.0),
            one_class: attr::int(node, "one_class", 0) == 1,
            features,
        },
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
    let labels = attr::ints(node, "classlabels_ints")?;
    ensure!(
        labels.len() >= 2,
        "an SVM classifier needs two or more classes"
    );
    let per_class: Vec<usize> = attr::ints(node, "vectors_per_class")?
        .into_iter()
        .map(|n| usize::try_from(n).map_err(|_| anyhow!("negative vectors_per_class")))
        .collect::<TractResult<_>>()?;
    let count: usize = per_class.iter().sum();
    let coefficients = attr::floats(node, "coefficients")?;
    let rho = attr::floats(node, "rho")?;
    let prob_a = attr::floats(node, "prob_a")?;
    let prob_b = attr::floats(node, "prob_b")?;
    let k = labels.len();
    let supports = supports(node, count)?;
    let features = match &supports {
        Some(s) => {
            ensure!(
                per_class.len() == k,
                "vectors_per_class and class labels differ in length"
            );
            ensure!(
                coefficients.len() >= (k - 1) * count,
                "too few coefficients"
            );
            ensure!(rho.len() >= k * (k - 1) / 2, "too few rho values");
            ensure!(
                prob_a.is_empty()
                    || (prob_a.len() >= k * (k - 1) / 2 && prob_b.len() == prob_a.len()),
                "prob_a/prob_b do not cover every class pair"
            );
            s.features
        }
        None => {
            ensure!(
                coefficients.len() % k == 0 && !rho.is_empty(),
                "linear SVM coefficients do not split into {k} classes"
            );
            coefficients.len() / k
        }
    };
    Ok(MlOp::boxed(
        node,
        SvmClassifier {
            weights_all_positive: coefficients.iter().all(|c| *c >= 0.0),
            supports,
            per_class,
            coefficients,
            rho,
            prob_a,
            prob_b,
            labels,
            features,
            transform: PostTransform::parse(&attr::string(node, "post_transform", "NONE"))?,
        },
    ))
}
