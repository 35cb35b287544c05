//! The features of one window as they are scored (in the order that reads the raster best) and
//! written (in input order): what became of each.

use crate::input::features::{InputFeature, Problem};
use crate::output::Confidence;

/// What became of one feature: its label and confidence, or why it has none.
pub struct Done {
    /// The feature.
    pub feature: InputFeature,
    /// Its label and confidence, when classified.
    pub labelled: Option<(String, Confidence)>,
    /// Why it was not classified.
    pub problem: Option<Problem>,
    /// Every class's probability, for `--all-scores`, when classified.
    pub scores: Option<Vec<f64>>,
}

/// The features of one window as they are scored, in input order.
pub struct Window {
    /// Each position's outcome, once scored.
    pub done: Vec<Option<Done>>,
    /// Positions scored so far.
    pub filled: usize,
}

impl Window {
    /// A window of `len` features, none scored yet.
    pub fn new(len: usize) -> Window {
        Window {
            done: (0..len).map(|_| None).collect(),
            filled: 0,
        }
    }

    /// Whether every feature of the window is scored.
    pub fn complete(&self) -> bool {
        self.filled == self.done.len()
    }

    /// Takes the window's first rows that are all scored (the rows a stopped run can still
    /// write in input order); they are left out of this window, whose rows then start later.
    pub fn take_scored_prefix(&mut self) -> Window {
        let scored = self.done.iter().take_while(|d| d.is_some()).count();
        let rest = self.done.split_off(scored);
        let prefix = std::mem::replace(&mut self.done, rest);
        self.filled -= scored;
        Window {
            done: prefix,
            filled: scored,
        }
    }
}
