//! Topology export: [`Pipeline::describe`](crate::Pipeline::describe) and [`Topology`].

use std::fmt::{self, Write as _};

use crate::run::StageKind;

/// The shape of a pipeline: its stages and how they connect, from
/// [`Pipeline::describe`](crate::Pipeline::describe). Export it with [`mermaid`](Self::mermaid) or
/// [`dot`](Self::dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    stages: Vec<(String, StageKind, Vec<usize>)>,
}

impl Topology {
    /// The topology of these stages: name, kind and input indices each.
    pub(crate) fn new(stages: Vec<(String, StageKind, Vec<usize>)>) -> Self {
        Topology { stages }
    }

    /// The stages, in the order they were added: name, kind, and the indices
    /// of the stages feeding each one.
    pub fn stages(&self) -> impl Iterator<Item = (&str, StageKind, &[usize])> {
        self.stages
            .iter()
            .map(|(name, kind, inputs)| (name.as_str(), *kind, inputs.as_slice()))
    }

    /// A Mermaid flowchart (left to right), one node per stage labelled with
    /// its name and kind.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let pipeline = producer::iter(0..3).map(|x| x + 1).named("inc").boundary(8);
    /// assert_eq!(
    ///     pipeline.describe().mermaid(),
    ///     "flowchart LR\n    s0[\"iter#0<br/>source\"]\n    s1[\"inc<br/>fused\"]\n    s2[\"boundary#2<br/>boundary\"]\n    s0 --> s1\n    s1 --> s2\n"
    /// );
    /// ```
    pub fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, (name, kind, _)) in self.stages.iter().enumerate() {
            let _ = writeln!(out, "    s{i}[\"{}<br/>{kind}\"]", escape(name, "#quot;"));
        }
        for (i, (_, _, inputs)) in self.stages.iter().enumerate() {
            for input in inputs {
                let _ = writeln!(out, "    s{input} --> s{i}");
            }
        }
        out
    }

    /// A Graphviz DOT digraph (left to right), one box per stage labelled
    /// with its name and kind.
    ///
    /// # Examples
    ///
    /// ```
    /// use flowline_core::producer;
    ///
    /// let pipeline = producer::iter(0..3).filter(|x| x % 2 == 0);
    /// assert_eq!(
    ///     pipeline.describe().dot(),
    ///     "digraph pipeline {\n    rankdir=LR;\n    node [shape=box];\n    s0 [label=\"iter#0\\nsource\"];\n    s1 [label=\"filter#1\\nfused\"];\n    s0 -> s1;\n}\n"
    /// );
    /// ```
    pub fn dot(&self) -> String {
        let mut out = String::from("digraph pipeline {\n    rankdir=LR;\n    node [shape=box];\n");
        for (i, (name, kind, _)) in self.stages.iter().enumerate() {
            let _ = writeln!(
                out,
                "    s{i} [label=\"{}\\n{kind}\"];",
                escape(name, "\\\"")
            );
        }
        for (i, (_, _, inputs)) in self.stages.iter().enumerate() {
            for input in inputs {
                let _ = writeln!(out, "    s{input} -> s{i};");
            }
        }
        out.push_str("}\n");
        out
    }
}

fn escape(name: &str, quote: &str) -> String {
    name.replace('"', quote)
}

impl fmt::Display for Topology {
    /// The Mermaid form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mermaid())
    }
}
