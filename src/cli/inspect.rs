//! `minerfleet inspect DIR [--netuid N --competition ID]`: what `config.json` and the safetensors headers say
//! about a model directory and, with a competition, whether the model meets each of its constraints
//! (exit 1 if any fails).
use std::path::PathBuf;

use minerfleet::competition::{ConstraintCheck, Registry, group_digits};
use minerfleet::model::folder::FolderError;
use minerfleet::model::inspect::{self, InspectError, ModelInfo};

use super::output::human_bytes;
use super::{Exit, GlobalArgs, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory (config.json plus model.safetensors or model.safetensors.index.json and shards).
    pub dir: PathBuf,
    /// Subnet whose competition presets to check against (with --competition).
    #[arg(long, value_name = "N", requires = "competition")]
    pub netuid: Option<u16>,
    /// Competition id to check the model against (with --netuid).
    #[arg(long, value_name = "ID", requires = "netuid")]
    pub competition: Option<u16>,
}

/// What `--json` prints.
#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    model: &'a ModelInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    competition: Option<CompetitionRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Vec<ConstraintCheck>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passed: Option<bool>,
}

#[derive(Debug, serde::Serialize)]
struct CompetitionRef {
    netuid: u16,
    id: u16,
    name: String,
}

pub fn run(args: &Args, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let info = inspect::inspect_dir(&args.dir).map_err(|e| match e {
        InspectError::Folder(FolderError::NotFound { .. } | FolderError::NotADirectory { .. }) => {
            anyhow::Error::new(UsageError::config(e))
        }
        other => anyhow::Error::new(other),
    })?;
    let (competition, checks) = match (args.netuid, args.competition) {
        (Some(netuid), Some(id)) => {
            let registry = Registry::load(None)
                .map_err(|e| UsageError::about("cannot load the competition presets", e))?;
            let subnet = registry.subnet(netuid).ok_or_else(|| {
                UsageError::Message(format!(
                    "no competition presets for netuid {netuid}: `minerfleet competitions` lists the known subnets"
                ))
            })?;
            let competition = subnet.find(id).ok_or_else(|| {
                UsageError::Message(format!(
                    "netuid {netuid} has no competition {id}: `minerfleet competitions --netuid {netuid}` lists them"
                ))
            })?;
            let checks = competition.check(&info);
            (
                Some(CompetitionRef {
                    netuid,
                    id,
                    name: competition.name.clone(),
                }),
                Some(checks),
            )
        }
        _ => (None, None),
    };
    let passed = checks.as_ref().map(|c| c.iter().all(|c| c.passed));
    let report = Report {
        model: &info,
        competition,
        checks,
        passed,
    };
    if global.json {
        super::output::print_json(&report)?;
    } else {
        super::output::write_stdout(&render(&report))?;
    }
    Ok(if passed == Some(false) {
        Exit::Problems
    } else {
        Exit::Ok
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn render(r: &Report<'_>) -> String {
    let m = r.model;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".into());
    let mut rows: Vec<(&str, String)> = vec![
        ("model", m.dir.display().to_string()),
        (
            "architectures",
            if m.architectures.is_empty() {
                "(not set)".into()
            } else {
                m.architectures.join(", ")
            },
        ),
        ("model_type", opt(&m.model_type)),
        ("config dtype", opt(&m.config_dtype)),
        (
            "parameters",
            format!(
                "{} ({:.2} B)",
                group_digits(m.total_params),
                m.total_params as f64 / 1e9
            ),
        ),
        (
            "by dtype",
            m.params_by_dtype
                .iter()
                .map(|(d, n)| format!("{d} {}", group_digits(*n)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "weights",
            format!(
                "{} ({} tensors, {})",
                m.weight_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                m.tensors.len(),
                human_bytes(m.tensor_bytes)
            ),
        ),
        ("format pt", yes_no(m.format_pt).into()),
        (
            "total size",
            format!(
                "{} ({} bytes) in {} file(s)",
                human_bytes(m.total_bytes),
                group_digits(m.total_bytes),
                m.files.len()
            ),
        ),
        ("remote code", yes_no(m.remote_code).into()),
        ("pickle weights", yes_no(m.pickle_weights).into()),
    ];
    if !m.tied_weights.is_empty() {
        rows.push(("tied (once)", m.tied_weights.join(", ")));
    }
    for note in &m.notes {
        rows.push(("note", note.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<width$}  {v}\n"));
    }
    if let (Some(c), Some(checks)) = (&r.competition, &r.checks) {
        out.push_str(&format!(
            "\ncompetition {} ({}) on netuid {}\n",
            c.id, c.name, c.netuid
        ));
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header(["RULE", "EXPECTED", "ACTUAL", "RESULT"]);
        for check in checks {
            table.add_row([
                check.rule.as_str(),
                check.expected.as_str(),
                check.actual.as_str(),
                if check.passed { "pass" } else { "FAIL" },
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        let failed = checks.iter().filter(|c| !c.passed).count();
        if failed == 0 {
            out.push_str(&format!("all {} constraint(s) pass\n", checks.len()));
        } else {
            out.push_str(&format!(
                "{failed} of {} constraint(s) FAIL\n",
                checks.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use minerfleet::model::inspect::ConfigDims;
    use std::collections::BTreeMap;

    fn info() -> ModelInfo {
        ModelInfo {
            dir: "m".into(),
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: Some("llama".into()),
            config_dtype: None,
            total_params: 3_212_749_824,
            params_by_dtype: BTreeMap::from([("BF16".into(), 3_212_749_824)]),
            format_pt: true,
            total_bytes: 6_425_499_648,
            files: vec![("config.json".into(), 10)],
            remote_code: false,
            pickle_weights: true,
            sharded: false,
            config: ConfigDims::default(),
            weight_files: vec!["model.safetensors".into()],
            tensors: vec![],
            tensor_bytes: 6_425_499_600,
            index_total_size: None,
            tied_weights: vec!["lm_head.weight".into()],
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn number_formats() {}

    #[test]
    fn renders_model_without_competition() {
        let m = info();
        let text = render(&Report {
            model: &m,
            competition: None,
            checks: None,
            passed: None,
        });
        assert!(
            text.contains("architectures   LlamaForCausalLM\n"),
            "{text}"
        );
        assert!(text.contains("config dtype    (not set)\n"), "{text}");
        assert!(
            text.contains("parameters      3,212,749,824 (3.21 B)\n"),
            "{text}"
        );
        assert!(text.contains("pickle weights  yes\n"), "{text}");
        assert!(text.contains("tied (once)     lm_head.weight\n"), "{text}");
        assert!(text.contains("note            a note\n"), "{text}");
        assert!(!text.contains("competition"), "{text}");
    }

    #[test]
    fn renders_checks_and_json() {
        let m = info();
        let checks = vec![
            ConstraintCheck {
                rule: "parameters".into(),
                expected: "3.0B..=4.0B".into(),
                actual: "3.2B".into(),
                passed: true,
            },
            ConstraintCheck {
                rule: "pickle weights".into(),
                expected: "none".into(),
                actual: "pytorch_model.bin".into(),
                passed: false,
            },
        ];
        let report = Report {
            model: &m,
            competition: Some(CompetitionRef {
                netuid: 80,
                id: 1,
                name: "RES3B_MODEL".into(),
            }),
            checks: Some(checks),
            passed: Some(false),
        };
        let text = render(&report);
        assert!(
            text.contains("competition 1 (RES3B_MODEL) on netuid 80"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("parameters") && l.contains("pass")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("pytorch_model.bin") && l.contains("FAIL")),
            "{text}"
        );
        assert!(text.contains("1 of 2 constraint(s) FAIL"), "{text}");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["passed"], false);
        assert_eq!(json["competition"]["netuid"], 80);
        assert_eq!(json["checks"][1]["passed"], false);
        assert_eq!(json["model"]["total_params"], 3_212_749_824u64);
    }
}
