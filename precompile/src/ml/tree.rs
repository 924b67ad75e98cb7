//! Tree ensembles: `TreeEnsembleRegressor`, `TreeEnsembleClassifier` (ai.onnx.ml 1–3) and
//! `TreeEnsemble` (ai.onnx.ml 5), one evaluator.
//!
//! Trees are walked in the model's order and leaf weights summed in that order, in `f32`;
//! aggregation, base values and the binary-classifier conventions follow onnxruntime's
//! reference kernel. Trees are checked when the model is loaded: every child exists and
//! belongs to the same tree, no cycles, depth at most [`MAX_DEPTH`]. Gas prices the worst case:
//! every tree walked to its deepest leaf.

use std::collections::HashMap;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attr;
use super::op::{fact_rows, row_count, rows, tensor, Kernel, MlOp};
use super::transform::{binary_pair, PostTransform, SecondClass};

/// Deepest tree accepted (onnxruntime's limit).
pub const MAX_DEPTH: usize = 1000;

/// Compute units per node visited, and per ensemble run, calibrated with
/// `verinfer-bench --in-process-only` so that a tree ensemble's compute gas per second of bare
/// run is within 2× of ordinary EVM execution across shallow forests and deep boosted
/// ensembles: a run costs about 1.4 µs plus 4 ns per node of the worst-case path, measured on
/// the RandomForest, XGBoost and LightGBM test models.
pub const UNITS_PER_VISIT: u64 = 128;

/// Compute units of one ensemble run on top of its visits (see [`UNITS_PER_VISIT`]).
pub const UNITS_PER_RUN: u64 = 32_768;

pub(super) fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleRegressor", regressor);
    reg.insert("TreeEnsembleClassifier", classifier);
    reg.insert("TreeEnsemble", ensemble_v5);
}

/// How a branch node compares its feature with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Member,
    Leaf,
}

impl Rule {
    fn parse(s: &str) -> TractResult<Self> {
        Ok(match s {
            "BRANCH_LEQ" => Self::Leq,
            "BRANCH_LT" => Self::Lt,
            "BRANCH_GTE" => Self::Gte,
            "BRANCH_GT" => Self::Gt,
            "BRANCH_EQ" => Self::Eq,
            "BRANCH_NEQ" => Self::Neq,
            "BRANCH_MEMBER" => Self::Member,
            "LEAF" => Self::Leaf,
            other => bail!("unknown node mode {other:?}"),
        })
    }

    fn from_code(code: i64) -> TractResult<Self> {
        Ok(match code {
            0 => Self::Leq,
            1 => Self::Lt,
            2 => Self::Gte,
            3 => Self::Gt,
            4 => Self::Eq,
            5 => Self::Neq,
            6 => Self::Member,
            other => bail!("unknown node mode {other}"),
        })
    }
}

/// One node: a branch (feature, rule, threshold, children) or a leaf (weights).
#[derive(Clone, Debug)]
struct Node {
    rule: Rule,
    feature: usize,
    threshold: f32,
    members: Vec<f32>,
    missing_goes_true: bool,
    if_true: usize,
    if_false: usize,
    /// (target or class, weight), for leaves.
    weights: Vec<(usize, f32)>,
}

impl Node {
    fn branch(rule: Rule, feature: usize, threshold: f32) -> Self {
        Node {
            rule,
            feature,
            threshold,
            members: vec![],
            missing_goes_true: false,
            if_true: 0,
            if_false: 0,
            weights: vec![],
        }
    }

    fn goes_true(&self, x: f32) -> bool {
        let hit = match self.rule {
            Rule::Leq => x <= self.threshold,
            Rule::Lt => x < self.threshold,
            Rule::Gte => x >= self.threshold,
            Rule::Gt => x > self.threshold,
            Rule::Eq => x == self.threshold,
            Rule::Neq => x != self.threshold,
            Rule::Member => self.members.contains(&x),
            Rule::Leaf => false,
        };
        hit || (self.missing_goes_true && x.is_nan())
    }
}

/// How tree outputs combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

impl Aggregate {
    fn parse(s: &str) -> TractResult<Self> {
        Ok(match s {
            "SUM" => Self::Sum,
            "AVERAGE" => Self::Average,
            "MIN" => Self::Min,
            "MAX" => Self::Max,
            other => bail!("unknown aggregate_function {other:?}"),
        })
    }

    /// Fold one tree's leaf weight into a score.
    fn add(self, score: &mut Score, weight: f32) {
        score.value = match self {
            Aggregate::Sum | Aggregate::Average => score.value + weight,
            Aggregate::Min if score.set && score.value <= weight => score.value,
            Aggregate::Max if score.set && score.value >= weight => score.value,
            Aggregate::Min | Aggregate::Max => weight,
        };
        score.set = true;
    }

    fn from_code(code: i64) -> TractResult<Self> {
        Ok(match code {
            0 => Self::Average,
            1 => Self::Sum,
            2 => Self::Min,
            3 => Self::Max,
            other => bail!("unknown aggregate_function {other}"),
        })
    }
}

/// Classifier labels and onnxruntime's binary-case flags.
#[derive(Clone, Debug)]
struct Classes {
    labels: Vec<i64>,
    /// Two classes and every weight on one class id.
    binary: bool,
    weights_all_positive: bool,
}

/// A tree ensemble, regressor or classifier.
#[derive(Clone, Debug)]
pub struct TreeEnsemble {
    op: &'static str,
    nodes: Vec<Node>,
    roots: Vec<usize>,
    /// Deepest branch count of each tree, for pricing.
    depths: Vec<usize>,
    targets: usize,
    features: usize,
    aggregate: Aggregate,
    transform: PostTransform,
    base_values: Vec<f32>,
    classes: Option<Classes>,
}

/// A (score, has_score) accumulator, as onnxruntime keeps them.
#[derive(Clone, Copy, Debug, Default)]
struct Score {
    value: f32,
    set: bool,
}

impl TreeEnsemble {
    fn leaf(&self, root: usize, x: &[f32]) -> &Node {
        let mut node = &self.nodes[root];
        while node.rule != Rule::Leaf {
            let x = x.get(node.feature).copied().unwrap_or(f32::NAN);
            node = &self.nodes[if node.goes_true(x) {
                node.if_true
            } else {
                node.if_false
            }];
        }
        node
    }

    /// Scores of one row: (class or target scores, label).
    fn row(&self, x: &[f32]) -> (Vec<f32>, Option<i64>) {
        if self.targets == 1 && self.classes.is_none() {
            return (vec![self.single_target(x)], None);
        }
        let mut scores = vec![Score::default(); self.targets];
        for &root in &self.roots {
            for &(target, weight) in &self.leaf(root, x).weights {
                self.aggregate.add(&mut scores[target], weight);
            }
        }
        match &self.classes {
            None => (self.finish_targets(scores), None),
            Some(classes) => {
                let (scores, label) = self.finish_classes(classes, scores);
                (scores, Some(label))
            }
        }
    }

    fn single_target(&self, x: &[f32]) -> f32 {
        let origin = if self.base_values.len() == 1 {
            self.base_values[0]
        } else {
            0.0
        };
        let mut score = Score::default();
        for &root in &self.roots {
            let weight = self.leaf(root, x).weights.first().map_or(0.0, |w| w.1);
            self.aggregate.add(&mut score, weight);
        }
        let value = match self.aggregate {
            Aggregate::Sum => score.value + origin,
            Aggregate::Average => score.value / self.roots.len() as f32 + origin,
            Aggregate::Min | Aggregate::Max if score.set => score.value + origin,
            Aggregate::Min | Aggregate::Max => origin,
        };
        if self.transform == PostTransform::Probit {
            super::transform::probit(value)
        } else {
            value
        }
    }

    fn finish_targets(&self, scores: Vec<Score>) -> Vec<f32> {
        let with_base = self.base_values.len() == self.targets;
        let n = self.roots.len() as f32;
        let mut out: Vec<f32> = scores
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let base = if with_base { self.base_values[j] } else { 0.0 };
                match self.aggregate {
                    Aggregate::Sum => s.value + base,
                    Aggregate::Average => s.value / n + base,
                    Aggregate::Min | Aggregate::Max => base + if s.set { s.value } else { 0.0 },
                }
            })
            .collect();
        self.transform.apply(&mut out);
        out
    }

    fn finish_classes(&self, classes: &Classes, mut scores: Vec<Score>) -> (Vec<f32>, i64) {
        let base = &self.base_values;
        if self.targets > 2 {
            for (s, b) in scores.iter_mut().zip(base) {
                s.value = if s.set { s.value + b } else { *b };
                s.set = true;
            }
            let mut best: Option<(usize, f32)> = None;
            for (k, s) in scores.iter().enumerate() {
                if s.set && best.is_none_or(|(_, w)| s.value > w) {
                    best = Some((k, s.value));
                }
            }
            let label = classes.labels[best.map_or(0, |(k, _)| k)];
            let mut out: Vec<f32> = scores.iter().map(|s| s.value).collect();
            self.transform.apply(&mut out);
            return (out, label);
        }
        // Two classes.
        let mut second: Option<SecondClass> = None;
        let mut two = true;
        match base.len() {
            2 if scores[1].set => {
                scores[1].value = base[1] + scores[0].value;
                scores[0].value = -scores[1].value;
            }
            2 => {
                scores[1].value += base[1];
                scores[0].value += base[0];
            }
            1 => {
                scores[0].value += base[0];
                two = scores[1].set;
            }
            _ => {
                second = Some(SecondClass::Margin);
                two = scores[1].set;
            }
        }
        let positive = if two && scores[1].set {
            scores[1].value
        } else if scores[0].set {
            scores[0].value
        } else {
            0.0
        };
        let label = if classes.binary {
            let (won, kind) = match (classes.weights_all_positive, positive) {
                (true, p) => (p > 0.5, SecondClass::Complement),
                (false, p) => (p > 0.0, SecondClass::Margin),
            };
            second = Some(kind);
            classes.labels[usize::from(won)]
        } else {
            i64::from(positive > 0.0)
        };
        if two {
            let mut out = vec![scores[0].value, scores[1].value];
            self.transform.apply(&mut out);
            return (out, label);
        }
        let s = scores[0].value;
        let out = match (self.transform, second) {
            (PostTransform::Probit, _) => vec![super::transform::probit(s), 0.0],
            (t, Some(kind)) => binary_pair(s, t, kind).to_vec(),
            (_, None) => vec![s, 0.0],
        };
        (out, label)
    }

    /// Check links, depth and cycles; record each tree's deepest path for pricing. Depths are
    /// memoized per node, so a tree whose branches share subtrees (a DAG) costs its node count,
    /// not its path count.
    fn validate(&mut self) -> TractResult<()> {
        const UNSEEN: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        let n = self.nodes.len();
        let mut state = vec![UNSEEN; n];
        let mut depth = vec![0usize; n];
        self.depths = Vec::with_capacity(self.roots.len());
        for &root in &self.roots {
            ensure!(root < n, "tree root {root} does not exist");
            let mut stack = vec![(root, false)];
            while let Some((id, expanded)) = stack.pop() {
                if state[id] == DONE {
                    continue;
                }
                let node = &self.nodes[id];
                if node.rule == Rule::Leaf {
                    for (target, _) in &node.weights {
                        ensure!(
                            *target < self.targets,
                            "leaf weight for target {target} of {}",
                            self.targets
                        );
                    }
                    state[id] = DONE;
                    continue;
                }
                let children = [node.if_true, node.if_false];
                ensure!(
                    children.iter().all(|c| *c < n),
                    "node {id} points outside the tree"
                );
                if expanded {
                    depth[id] = 1 + depth[children[0]].max(depth[children[1]]);
                    ensure!(depth[id] <= MAX_DEPTH, "a tree is deeper than {MAX_DEPTH}");
                    state[id] = DONE;
                    continue;
                }
                state[id] = ON_PATH;
                stack.push((id, true));
                for child in children {
                    ensure!(
                        state[child] != ON_PATH,
                        "a tree has a cycle through node {child}"
                    );
                    if state[child] == UNSEEN {
                        stack.push((child, false));
                    }
                }
            }
            self.depths.push(depth[root]);
        }
        if let Some(classes) = &self.classes {
            ensure!(
                classes.labels.len() == self.targets,
                "class labels and class count differ"
            );
        }
        Ok(())
    }
}

impl Kernel for TreeEnsemble {
    fn name(&self) -> &'static str {
        self.op
    }

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1, "{} takes one input", self.op);
        let (n, c) = fact_rows(inputs[0])?;
        ensure!(
            c >= self.features,
            "{} reads feature {} of an input with {c} columns",
            self.op,
            self.features.saturating_sub(1)
        );
        let scores = f32::fact([n.clone(), self.targets.into()]);
        Ok(match self.classes {
            Some(_) => tvec!(i64::fact([n]), scores),
            None => tvec!(scores),
        })
    }

    fn eval(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (n, c, x) = rows(&inputs[0])?;
        let mut labels = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n * self.targets);
        for r in 0..n {
            let (row, label) = self.row(&x[r * c..(r + 1) * c]);
            scores.extend_from_slice(&row[..self.targets.min(row.len())]);
            scores.resize((r + 1) * self.targets, 0.0);
            labels.extend(label);
        }
        let scores = tensor(&[n, self.targets], scores)?;
        Ok(match self.classes {
            Some(_) => tvec!(tensor(&[n], labels)?, scores),
            None => tvec!(scores),
        })
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<u64> {
        let (n, _) = fact_rows(inputs[0])?;
        let visits: u64 = self.depths.iter().map(|d| *d as u64 + 1).sum();
        let finish = self.targets as u64 * (1 + self.transform.cost_per_score());
        Ok(UNITS_PER_RUN + row_count(&n) * (visits * UNITS_PER_VISIT + finish))
    }
}

/// Build from the opset 1–3 attributes (`nodes_*`, `target_*` or `class_*`).
fn legacy(node: &NodeProto, classifier: bool) -> TractResult<TreeEnsemble> {
    let tree_ids = attr::ints(node, "nodes_treeids")?;
    let node_ids = attr::ints(node, "nodes_nodeids")?;
    let features = attr::ints(node, "nodes_featureids")?;
    let values = attr::floats(node, "nodes_values")?;
    let modes = attr::strings(node, "nodes_modes");
    let true_ids = attr::ints(node, "nodes_truenodeids")?;
    let false_ids = attr::ints(node, "nodes_falsenodeids")?;
    let missing = attr::ints(node, "nodes_missing_value_tracks_true")?;
    let n = tree_ids.len();
    for (name, len) in [
        ("nodes_nodeids", node_ids.len()),
        ("nodes_featureids", features.len()),
        ("nodes_values", values.len()),
        ("nodes_modes", modes.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_falsenodeids", false_ids.len()),
    ] {
        ensure!(len == n, "{name} has {len} entries, nodes_treeids {n}");
    }
    let mut index = HashMap::with_capacity(n);
    let mut nodes = Vec::with_capacity(n);
    let mut roots = vec![];
    for i in 0..n {
        ensure!(
            index.insert((tree_ids[i], node_ids[i]), i).is_none(),
            "node {} of tree {} appears twice",
            node_ids[i],
            tree_ids[i]
        );
        if i == 0 || tree_ids[i] != tree_ids[i - 1] {
            roots.push(i);
        }
        let feature = usize::try_from(features[i]).map_err(|_| anyhow!("negative feature id"))?;
        let mut node = Node::branch(Rule::parse(&modes[i])?, feature, values[i]);
        ensure!(
            node.rule != Rule::Member,
            "BRANCH_MEMBER needs the opset-5 TreeEnsemble"
        );
        node.missing_goes_true = missing.get(i) == Some(&1);
        nodes.push(node);
    }
    for i in 0..n {
        if nodes[i].rule == Rule::Leaf {
            continue;
        }
        let child = |id: i64| {
            index
                .get(&(tree_ids[i], id))
                .copied()
                .ok_or_else(|| anyhow!("tree {} has no node {id}", tree_ids[i]))
        };
        nodes[i].if_true = child(true_ids[i])?;
        nodes[i].if_false = child(false_ids[i])?;
    }
    let prefix = if classifier { "class" } else { "target" };
    let w_trees = attr::ints(node, &format!("{prefix}_treeids"))?;
    let w_nodes = attr::ints(node, &format!("{prefix}_nodeids"))?;
    let w_ids = attr::ints(node, &format!("{prefix}_ids"))?;
    let weights = attr::floats(node, &format!("{prefix}_weights"))?;
    ensure!(
        w_nodes.len() == w_trees.len()
            && w_ids.len() == w_trees.len()
            && weights.len() == w_trees.len(),
        "{prefix}_* attributes differ in length"
    );
    for k in 0..w_trees.len() {
        let leaf = index
            .get(&(w_trees[k], w_nodes[k]))
            .copied()
            .ok_or_else(|| {
                anyhow!(
                    "weight for missing node {} of tree {}",
                    w_nodes[k],
                    w_trees[k]
                )
            })?;
        let id = usize::try_from(w_ids[k]).map_err(|_| anyhow!("negative {prefix} id"))?;
        nodes[leaf].weights.push((id, weights[k]));
    }
    let (targets, classes) = if classifier {
        ensure!(
            attr::strings(node, "classlabels_strings").is_empty(),
            "string class labels cannot cross the ABI"
        );
        let labels = attr::ints(node, "classlabels_int64s")?;
        ensure!(
            labels.len() >= 2,
            "a tree classifier needs two or more class labels"
        );
        let mut ids: Vec<i64> = w_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let classes = Classes {
            binary: labels.len() == 2 && ids.len() == 1,
            weights_all_positive: weights.iter().all(|w| *w >= 0.0),
            labels,
        };
        (classes.labels.len(), Some(classes))
    } else {
        (attr::int(node, "n_targets", 1).max(1) as usize, None)
    };
    let features = nodes
        .iter()
        .filter(|n| n.rule != Rule::Leaf)
        .map(|n| n.feature + 1)
        .max()
        .unwrap_or(0);
    let mut ensemble = TreeEnsemble {
        op: if classifier {
            "TreeEnsembleClassifier"
        } else {
            "TreeEnsembleRegressor"
        },
        nodes,
        roots,
        depths: vec![],
        targets,
        features,
        aggregate: Aggregate::parse(&attr::string(node, "aggregate_function", "SUM"))?,
        transform: PostTransform::parse(&attr::string(node, "post_transform", "NONE"))?,
        base_values: attr::floats(node, "base_values")?,
        classes,
    };
    ensemble.validate()?;
    Ok(ensemble)
}

fn regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(MlOp::boxed(node, legacy(node, false)?))
}

fn classifier(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(MlOp::boxed(node, legacy(node, true)?))
}

/// Build from the opset-5 `TreeEnsemble` attributes: interior nodes, then leaves appended
/// after them.
fn ensemble_v5(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok(MlOp::boxed(node, ensemble_v5_kernel(node)?))
}

fn ensemble_v5_kernel(node: &NodeProto) -> TractResult<TreeEnsemble> {
    let features = attr::ints(node, "nodes_featureids")?;
    let splits = attr::floats(node, "nodes_splits")?;
    let modes = attr::ints(node, "nodes_modes")?;
    let true_ids = attr::ints(node, "nodes_truenodeids")?;
    let true_leafs = attr::ints(node, "nodes_trueleafs")?;
    let false_ids = attr::ints(node, "nodes_falsenodeids")?;
    let false_leafs = attr::ints(node, "nodes_falseleafs")?;
    let missing = attr::ints(node, "nodes_missing_value_tracks_true")?;
    let members = attr::floats(node, "membership_values")?;
    let leaf_targets = attr::ints(node, "leaf_targetids")?;
    let leaf_weights = attr::floats(node, "leaf_weights")?;
    let n = features.len();
    for (name, len) in [
        ("nodes_splits", splits.len()),
        ("nodes_modes", modes.len()),
        ("nodes_truenodeids", true_ids.len()),
        ("nodes_trueleafs", true_leafs.len()),
        ("nodes_falsenodeids", false_ids.len()),
        ("nodes_falseleafs", false_leafs.len()),
    ] {
        ensure!(len == n, "{name} has {len} entries, nodes_featureids {n}");
    }
    ensure!(
        leaf_targets.len() == leaf_weights.len(),
        "leaf_targetids and leaf_weights differ in length"
    );
    let mut sets = members.split(|v| v.is_nan());
    let mut nodes = Vec::with_capacity(n + leaf_weights.len());
    let link = |id: i64, leaf: i64| -> TractResult<usize> {
        let id = usize::try_from(id).map_err(|_| anyhow!("negative node id"))?;
        Ok(if leaf == 1 { n + id } else { id })
    };
    for i in 0..n {
        let feature = usize::try_from(features[i]).map_err(|_| anyhow!("negative feature id"))?;
        let mut node = Node::branch(Rule::from_code(modes[i])?, feature, splits[i]);
        if node.rule == Rule::Member {
            node.members = sets
                .next()
                .ok_or_else(|| {
                    anyhow!("membership_values has fewer sets than BRANCH_MEMBER nodes")
                })?
                .to_vec();
        }
        node.missing_goes_true = missing.get(i) == Some(&1);
        node.if_true = link(true_ids[i], true_leafs[i])?;
        node.if_false = link(false_ids[i], false_leafs[i])?;
        nodes.push(node);
    }
    for (target, weight) in leaf_targets.iter().zip(&leaf_weights) {
        let mut leaf = Node::branch(Rule::Leaf, 0, 0.0);
        let target = usize::try_from(*target).map_err(|_| anyhow!("negative target id"))?;
        leaf.weights.push((target, *weight));
        nodes.push(leaf);
    }
    let roots = attr::ints(node, "tree_roots")?
        .into_iter()
        .map(|r| usize::try_from(r).map_err(|_| anyhow!("negative tree root")))
        .collect::<TractResult<Vec<_>>>()?;
    let mut ensemble = TreeEnsemble {
        op: "TreeEnsemble",
        features: features.iter().map(|f| *f as usize + 1).max().unwrap_or(0),
        nodes,
        roots,
        depths: vec![],
        targets: attr::int(node, "n_targets", 1).max(1) as usize,
        aggregate: Aggregate::from_code(attr::int(node, "aggregate_function", 1))?,
        transform: PostTransform::from_code(attr::int(node, "post_transform", 0))?,
        base_values: vec![],
        classes: None,
    };
    ensemble.validate()?;
    Ok(ensemble)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{AttributeProto, TensorProto};

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn float_tensor(name: &str, v: &[f32]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            t: Some(TensorProto {
                dims: vec![v.len() as i64],
                data_type: 1,
                float_data: v.to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// One tree: `x[0] ∈ {0, 1, 3}` ? 10 : (`x[1]` missing ? 20 : 30); NaN ends the sets.
    fn member_tree() -> TreeEnsemble {
        let node = NodeProto {
            op_type: "TreeEnsemble".into(),
            attribute: vec![
                ints("tree_roots", &[0]),
                ints("nodes_modes", &[6, 0]),
                ints("nodes_featureids", &[0, 1]),
                float_tensor("nodes_splits", &[f32::NAN, 5.0]),
                ints("nodes_truenodeids", &[0, 1]),
                ints("nodes_trueleafs", &[1, 1]),
                ints("nodes_falsenodeids", &[1, 2]),
                ints("nodes_falseleafs", &[0, 1]),
                ints("nodes_missing_value_tracks_true", &[0, 1]),
                float_tensor("membership_values", &[0.0, 1.0, 3.0, f32::NAN]),
                ints("leaf_targetids", &[0, 0, 0]),
                float_tensor("leaf_weights", &[10.0, 20.0, 30.0]),
            ],
            ..Default::default()
        };
        ensemble_v5_kernel(&node).unwrap()
    }

    #[test]
    fn set_membership_and_missing_tracks() {
        let tree = member_tree();
        assert_eq!(tree.row(&[0.0, 9.0]).0, vec![10.0]);
        assert_eq!(tree.row(&[3.0, 9.0]).0, vec![10.0]);
        assert_eq!(tree.row(&[2.0, 1.0]).0, vec![20.0]);
        assert_eq!(tree.row(&[2.0, 9.0]).0, vec![30.0]);
        assert_eq!(tree.row(&[2.0, f32::NAN]).0, vec![20.0]);
        assert_eq!(tree.depths, vec![2]);
    }

    #[test]
    fn a_classifier_needs_two_classes() {
        let node = NodeProto {
            op_type: "TreeEnsembleClassifier".into(),
            attribute: vec![
                ints("classlabels_int64s", &[7]),
                ints("nodes_treeids", &[0]),
                ints("nodes_nodeids", &[0]),
                ints("nodes_featureids", &[0]),
                float_tensor("nodes_values", &[0.0]),
                AttributeProto {
                    name: "nodes_modes".into(),
                    strings: vec![b"LEAF".to_vec()],
                    ..Default::default()
                },
                ints("nodes_truenodeids", &[0]),
                ints("nodes_falsenodeids", &[0]),
            ],
            ..Default::default()
        };
        let e = legacy(&node, true).unwrap_err().to_string();
        assert!(e.contains("two or more class labels"), "{e}");
    }

    #[test]
    fn cycles_are_refused() {
        let node = NodeProto {
            op_type: "TreeEnsemble".into(),
            attribute: vec![
                ints("tree_roots", &[0]),
                ints("nodes_modes", &[0, 0]),
                ints("nodes_featureids", &[0, 0]),
                float_tensor("nodes_splits", &[1.0, 2.0]),
                ints("nodes_truenodeids", &[1, 0]),
                ints("nodes_trueleafs", &[0, 0]),
                ints("nodes_falsenodeids", &[0, 0]),
                ints("nodes_falseleafs", &[1, 1]),
                ints("leaf_targetids", &[0]),
                float_tensor("leaf_weights", &[1.0]),
            ],
            ..Default::default()
        };
        let e = ensemble_v5_kernel(&node).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    /// 200 branch nodes, each with both children on the next: 2^200 paths, 201 nodes. Admission
    /// must see the depth (200) without walking every path.
    #[test]
    fn shared_subtrees_are_measured_in_linear_time() {
        let n = 200i64;
        let ids: Vec<i64> = (1..=n).collect();
        let node = NodeProto {
            op_type: "TreeEnsemble".into(),
            attribute: vec![
                ints("tree_roots", &[0]),
                ints("nodes_modes", &vec![0; n as usize]),
                ints("nodes_featureids", &vec![0; n as usize]),
                float_tensor("nodes_splits", &vec![1.0; n as usize]),
                ints("nodes_truenodeids", &ids),
                ints("nodes_falsenodeids", &ids),
                ints(
                    "nodes_trueleafs",
                    &(0..n).map(|i| i64::from(i == n - 1)).collect::<Vec<_>>(),
                ),
                ints(
                    "nodes_falseleafs",
                    &(0..n).map(|i| i64::from(i == n - 1)).collect::<Vec<_>>(),
                ),
                ints("leaf_targetids", &[0; 201]),
                float_tensor("leaf_weights", &[1.0; 201]),
            ],
            ..Default::default()
        };
        let tree = ensemble_v5_kernel(&node).unwrap();
        assert_eq!(tree.depths, vec![200]);
    }
}
