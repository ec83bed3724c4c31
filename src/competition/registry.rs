//! The set of known subnets: RON presets embedded in the binary, replaced per netuid by an operator's file.
//!
//! Every file (embedded or not) is parsed with ron (syntax errors carry `file:line:column`) and then validated
//! ([`Subnet::validate`]); semantic errors name the subnet, schedule entry, competition and field.

use super::{Competition, Epsilon, ScheduleEntry, Subnet, safetensors_dtype};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming a competitions override file (read by the CLI layer).
pub const COMPETITIONS_ENV: &str = "MINERFLEET_COMPETITIONS";

/// Largest competitions file accepted (they are a few KiB; this guards against reading a wrong, huge file).
pub const MAX_OVERRIDE_BYTES: u64 = 4 << 20;

/// The presets shipped in the binary: (file name, RON text).
const PRESETS: &[(&str, &str)] = &[
    ("sn80.ron", include_str!("presets/sn80.ron")),
    ("sn9.ron", include_str!("presets/sn9.ron")),
    ("demo.ron", include_str!("presets/demo.ron")),
];

/// Largest sane reward sum per schedule entry (1 plus float rounding slack).
const REWARD_SUM_LIMIT: f64 = 1.0 + 1e-9;

/// Why a subnet definition is unusable: where (subnet, entry, competition, field) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetProblem {
    /// E.g. `subnet 9 "pretraining", schedule entry 2 (start_block 5177981), competition 6 "TTS_V0", field reward`.
    pub location: String,
    /// What is wrong and what to do.
    pub problem: String,
}

impl fmt::Display for SubnetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.problem)
    }
}

impl std::error::Error for SubnetProblem {}

/// Loading competitions failed.
#[derive(Debug, thiserror::Error)]
pub enum CompetitionError {
    #[error(
        "cannot read competitions file {}: {source}; check the path given with --competitions or {COMPETITIONS_ENV}",
        path.display()
    )]
    /// The override file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// The read error.
        source: std::io::Error,
    },
    #[error(
        "competitions file {} is larger than {max} bytes; a competitions file is a few KiB of RON, check the path",
        path.display()
    )]
    /// The override file is over [`MAX_OVERRIDE_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        max: u64,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    /// The RON does not parse.
    Syntax {
        /// The file (or the embedded preset's name).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What ron reported.
        message: String,
    },
    #[error("{origin}: {problem}")]
    /// A subnet definition parses but is unusable.
    Invalid {
        /// The file (or the embedded preset's name).
        origin: String,
        /// Where and what.
        problem: SubnetProblem,
    },
    #[error("{origin}: netuid {netuid} is defined twice; keep one Subnet(...) per netuid")]
    /// Two definitions of one netuid in one file.
    DuplicateNetuid {
        /// The file (or the embedded preset's name).
        origin: String,
        /// The netuid defined twice.
        netuid: u16,
    },
    #[error("{origin}: the list holds no subnet; add at least one Subnet(...)")]
    /// A file with no subnet.
    Empty {
        /// The file (or the embedded preset's name).
        origin: String,
    },
}

/// Every known subnet by netuid.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    /// The subnets, by netuid.
    pub subnets: BTreeMap<u16, Subnet>,
}

impl Registry {
    /// The presets shipped in the binary (SN80, SN9, demo devnet subnet 999).
    pub fn embedded() -> Registry {
        let mut registry = Registry {
            subnets: BTreeMap::new(),
        };
        for (file, text) in PRESETS {
            // The presets are part of the program, not input; the `embedded_presets_are_valid` test keeps them so.
            let subnets = Registry::parse_subnets(text, &format!("embedded preset {file}"))
                .unwrap_or_else(|err| panic!("embedded competition preset is broken: {err}"));
            registry.apply(subnets);
        }
        registry
    }

    /// Embedded presets, with every subnet in `path` (if given) replacing the preset of the same netuid.
    pub fn load(overrides: Option<&Path>) -> Result<Registry, CompetitionError> {
        let mut registry = Registry::embedded();
        if let Some(path) = overrides {
            registry.apply(Registry::read_overrides(path)?);
        }
        Ok(registry)
    }

    /// Read and validate an override file holding one `Subnet(...)` or a list of them.
    pub fn read_overrides(path: &Path) -> Result<Vec<Subnet>, CompetitionError> {
        use crate::small_file::SmallFileError as E;
        let read_err = |source| CompetitionError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Regular files only, capped: a FIFO or a device named as the competitions file must not hang the loader.
        let text = crate::small_file::read_text(path, MAX_OVERRIDE_BYTES).map_err(|e| match e {
            E::TooLarge { .. } => CompetitionError::TooLarge {
                path: path.to_path_buf(),
                max: MAX_OVERRIDE_BYTES,
            },
            e => read_err(e.into_io()),
        })?;
        Registry::parse_subnets(&text, &path.display().to_string())
    }

    /// Parse and validate RON holding one `Subnet(...)` or a list of them. `origin` names the text in errors
    /// (a file path).
    pub fn parse_subnets(text: &str, origin: &str) -> Result<Vec<Subnet>, CompetitionError> {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let subnets = match options.from_str::<Subnet>(text) {
            Ok(subnet) => vec![subnet],
            Err(single_err) => match options.from_str::<Vec<Subnet>>(text) {
                Ok(list) => list,
                Err(list_err) => {
                    // Report the error of the shape that parsed further: that is the shape the author meant.
                    let pos = |e: &ron::error::SpannedError| (e.span.start.line, e.span.start.col);
                    let err = if pos(&list_err) > pos(&single_err) {
                        list_err
                    } else {
                        single_err
                    };
                    let (line, column) = token_position(text, &err.span);
                    let mut message = err.code.to_string();
                    if matches!(
                        err.code,
                        ron::Error::Eof
                            | ron::Error::ExpectedStructLike
                            | ron::Error::ExpectedNamedStructLike(_)
                            | ron::Error::ExpectedArray
                            | ron::Error::ExpectedDifferentStructName { .. }
                    ) && line == crate::ron_pos::first_token_line(text)
                    {
                        message.push_str(
                            "; a competitions file holds one `Subnet(...)` or a list `[Subnet(...), ...]` (see `minerfleet competitions --json` for the fields)",
                        );
                    }
                    return Err(CompetitionError::Syntax {
                        origin: origin.to_string(),
                        line,
                        column,
                        message,
                    });
                }
            },
        };
        if subnets.is_empty() {
            return Err(CompetitionError::Empty {
                origin: origin.to_string(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for subnet in &subnets {
            if !seen.insert(subnet.netuid) {
                return Err(CompetitionError::DuplicateNetuid {
                    origin: origin.to_string(),
                    netuid: subnet.netuid,
                });
            }
            subnet
                .validate()
                .map_err(|problem| CompetitionError::Invalid {
                    origin: origin.to_string(),
                    problem,
                })?;
        }
        Ok(subnets)
    }

    /// Put `subnets` in, each replacing the subnet of the same netuid.
    pub fn apply(&mut self, subnets: Vec<Subnet>) {
        for subnet in subnets {
            self.subnets.insert(subnet.netuid, subnet);
        }
    }

    /// The subnet `netuid`, when known.
    pub fn subnet(&self, netuid: u16) -> Option<&Subnet> {
        self.subnets.get(&netuid)
    }

    /// Known netuids, ascending.
    pub fn netuids(&self) -> Vec<u16> {
        self.subnets.keys().copied().collect()
    }

    /// The RON text of the embedded preset for `netuid` (a starting point for an override file).
    pub fn preset_text(netuid: u16) -> Option<&'static str> {
        PRESETS.iter().map(|(_, text)| *text).find(|text| {
            Registry::parse_subnets(text, "preset")
                .is_ok_and(|subnets| subnets.iter().any(|s| s.netuid == netuid))
        })
    }
}

/// Where the offending token of a ron error starts (1-based line and column, in characters): ron's span may start
/// before the whitespace and comments that precede the token ([`crate::ron_pos::token_start`]).
fn token_position(text: &str, span: &ron::error::Span) -> (usize, usize) {
    use crate::ron_pos::{LineCol, token_start};
    let at = token_start(
        text,
        LineCol {
            line: span.start.line,
            col: span.start.col,
        },
        LineCol {
            line: span.end.line,
            col: span.end.col,
        },
    );
    (at.line, at.col)
}

/// Builds [`SubnetProblem`]s with the location of the item being validated.
struct Locator {
    location: String,
}

impl Locator {
    fn problem(&self, field: &str, problem: impl Into<String>) -> SubnetProblem {
        let location = if field.is_empty() {
            self.location.clone()
        } else {
            format!("{}, field `{field}`", self.location)
        };
        SubnetProblem {
            location,
            problem: problem.into(),
        }
    }

    fn child(&self, what: String) -> Locator {
        Locator {
            location: format!("{}, {what}", self.location),
        }
    }
}

impl Subnet {
    /// Check the rules every subnet definition must follow: a non-empty schedule sorted by `start_block` and
    /// starting at 0, unique competition ids per entry, rewards in `[0, 1]` summing to at most 1, `min_params ≤
    /// max_params`, a known dtype, a sane epsilon, non-empty names.
    pub fn validate(&self) -> Result<(), SubnetProblem> {
        let at = Locator {
            location: format!("subnet {} \"{}\"", self.netuid, self.name),
        };
        if self.name.trim().is_empty() {
            return Err(at.problem("name", "is empty; give the subnet a name"));
        }
        if self.source.trim().is_empty() {
            return Err(at.problem(
                "source",
                "is empty; say where the values come from (repository@commit:path) so readers can tell how current they are",
            ));
        }
        if self.block_time_s == 0 {
            return Err(at.problem(
                "block_time_s",
                "is 0; use the chain's block time (12 on finney)",
            ));
        }
        let Some(first) = self.schedule.first() else {
            return Err(at.problem(
                "schedule",
                "is empty; add at least one entry `(start_block: 0, competitions: [...])`",
            ));
        };
        if first.start_block != 0 {
            return Err(at.problem(
                "schedule",
                format!(
                    "starts at block {}; the first entry must start at block 0 so every block has competitions",
                    first.start_block
                ),
            ));
        }
        for pair in self.schedule.windows(2) {
            if let [before, after] = pair
                && after.start_block <= before.start_block
            {
                return Err(at.problem(
                    "schedule",
                    format!(
                        "entry starting at block {} comes after the entry starting at block {}; sort the entries by start_block, each start_block once",
                        after.start_block, before.start_block
                    ),
                ));
            }
        }
        for (index, entry) in self.schedule.iter().enumerate() {
            validate_entry(
                entry,
                &at.child(format!(
                    "schedule entry {} (start_block {})",
                    index + 1,
                    entry.start_block
                )),
            )?;
        }
        Ok(())
    }
}

fn validate_entry(entry: &ScheduleEntry, at: &Locator) -> Result<(), SubnetProblem> {
    if entry.competitions.is_empty() {
        return Err(at.problem(
            "competitions",
            "is empty; an entry without competitions makes every commitment invalid from its start_block",
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for competition in &entry.competitions {
        if !ids.insert(competition.id) {
            return Err(at.problem(
                "competitions",
                format!(
                    "competition id {} appears twice; ids must be unique within an entry",
                    competition.id
                ),
            ));
        }
        validate_competition(
            competition,
            &at.child(format!(
                "competition {} \"{}\"",
                competition.id, competition.name
            )),
        )?;
    }
    let total: f64 = entry.competitions.iter().map(|c| c.reward).sum();
    if total > REWARD_SUM_LIMIT {
        return Err(at.problem(
            "competitions",
            format!("rewards sum to {total}, more than 1; the shares of one entry must add up to at most 1"),
        ));
    }
    Ok(())
}

fn validate_competition(c: &Competition, at: &Locator) -> Result<(), SubnetProblem> {
    if c.name.trim().is_empty() {
        return Err(at.problem(
            "name",
            "is empty; use the upstream constant name, e.g. B3_MODEL",
        ));
    }
    if !c.reward.is_finite() || !(0.0..=1.0).contains(&c.reward) {
        return Err(at.problem(
            "reward",
            format!("is {}; a reward share must be between 0 and 1", c.reward),
        ));
    }
    if c.max_params == 0 {
        return Err(at.problem("max_params", "is 0; no model would fit"));
    }
    if c.min_params > c.max_params {
        return Err(at.problem(
            "min_params",
            format!(
                "{} is larger than max_params {}; swap them",
                c.min_params, c.max_params
            ),
        ));
    }
    if c.architectures.is_empty() {
        return Err(at.problem(
            "architectures",
            "is empty; list the allowed classes, e.g. [\"LlamaForCausalLM\"]",
        ));
    }
    if c.architectures.iter().any(|a| a.trim().is_empty()) {
        return Err(at.problem("architectures", "holds an empty name; remove it"));
    }
    if c.sequence_length == Some(0) {
        return Err(at.problem(
            "sequence_length",
            "is 0; use None if the competition has none",
        ));
    }
    if c.tokenizer.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(at.problem(
            "tokenizer",
            "is empty; use None if the competition has none",
        ));
    }
    if safetensors_dtype(&c.dtype).is_none() {
        return Err(at.problem(
            "dtype",
            format!(
                "\"{}\" is not a known dtype; use \"bfloat16\", \"float16\" or \"float32\"",
                c.dtype
            ),
        ));
    }
    if c.max_bytes == 0 {
        return Err(at.problem("max_bytes", "is 0; no repo would fit"));
    }
    validate_epsilon(&c.epsilon, at)
}

fn validate_epsilon(epsilon: &Epsilon, at: &Locator) -> Result<(), SubnetProblem> {
    let in_range = |v: f64| v.is_finite() && (0.0..1.0).contains(&v);
    match *epsilon {
        Epsilon::Fixed(eps) => {
            if !in_range(eps) {
                return Err(at.problem(
                    "epsilon",
                    format!("Fixed({eps}) is out of range; epsilon must be at least 0 and below 1"),
                ));
            }
        }
        Epsilon::LinearDecay {
            start,
            end,
            decay_blocks,
        } => {
            if !in_range(start) || !in_range(end) {
                return Err(at.problem(
                    "epsilon",
                    format!(
                        "LinearDecay start {start} / end {end} is out of range; both must be at least 0 and below 1"
                    ),
                ));
            }
            if end > start {
                return Err(at.problem(
                    "epsilon",
                    format!("LinearDecay end {end} is larger than start {start}; epsilon decays, so end ≤ start"),
                ));
            }
            if decay_blocks == 0 {
                return Err(at.problem(
                    "epsilon",
                    "LinearDecay decay_blocks is 0; use Fixed(end) for a constant epsilon",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
