//! The examples at the end of each command's `--help` (clap's `after_long_help`), each a comment line and a
//! command line (` \\` continues it on the next line), kept short enough for a 100-column help. They are the
//! README's: a unit test checks that every command has some, and that each command line parses and is in
//! README.md.

/// `minerfleet --help`.
pub const MINERFLEET: &str = "\
Examples:
  # the main job: every miner validated, uploaded, committed
  minerfleet publish fleet.ron
  # desired vs on-chain state of every miner
  minerfleet status fleet.ron
  # until stopped: publish each miner's new checkpoints as they are written
  minerfleet watch fleet.ron
  # offline: keys load, models fit their competition, metadata fits 128 bytes
  minerfleet check fleet.ron
  # one model for one hotkey, with the reference upload_model.py flags
  minerfleet upload --load-model-dir D --hf-repo-id ns/name --competition-id 1 \\
      --wallet-name W --wallet-hotkey H

Exit codes: 0 all good, 1 problems found or work failed, 2 usage or configuration error.
`minerfleet COMMAND --help` shows each command's examples; README.md has more.";

pub const CHECK: &str = "\
Examples:
  # offline: keys load, models fit their competition, metadata fits 128 bytes
  minerfleet check fleet.ron
  # the same as JSON, for scripts
  minerfleet check fleet.ron --json
  # also online: every Hub token's whoami and write access (automatic with hub_accounts)
  minerfleet check fleet.ron --tokens
  # also load every tensor with tch: dtype, NaN/Inf, shapes, forward pass
  minerfleet check fleet.ron --deep
  # one worker per GPU (default: all GPUs, else CPU)
  minerfleet check fleet.ron --deep --devices cuda:0,cuda:1";

pub const INSPECT: &str = "\
Examples:
  # architecture, parameters, dtypes, sizes from the headers only
  minerfleet inspect models/h0
  # and every constraint of competition 1 of netuid 80, pass or fail (exit 1 if any fails)
  minerfleet inspect models/h0 --netuid 80 --competition 1";

pub const HASH: &str = "\
Examples:
  # per-file hashes and the directory hash
  minerfleet hash models/h0
  # and the secure hash a commitment of this hotkey carries
  minerfleet hash models/h0 --hotkey 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

pub const COMPETITIONS: &str = "\
Examples:
  # what AI Factory accepts now: every constraint, reward share, epsilon
  minerfleet competitions --netuid 80
  # the pretraining competitions active at a block
  minerfleet competitions --netuid 9 --block 5177981";

pub const PUBLISH: &str = "\
Examples:
  # every miner: validate, hash, upload, commit, read back, make public
  minerfleet publish fleet.ron
  # some miners (wallet/hotkey or hotkey name; repeatable)
  minerfleet publish fleet.ron --only demo/m3
  # local only: keys, validation, hashes, and the plan; nothing sent
  minerfleet publish fleet.ron --dry-run
  # one NDJSON event per state change on stdout
  minerfleet publish fleet.ron --json

The journal (what a rerun resumes from) is .minerfleet/<fleet>/journal beside the fleet file; the
summary names it.";

pub const WATCH: &str = "\
Examples:
  # until stopped: a live table on a terminal
  minerfleet watch fleet.ron
  # NDJSON events on stdout (one per state change)
  minerfleet watch fleet.ron --json
  # and Prometheus metrics on /metrics
  minerfleet watch fleet.ron --metrics-addr 127.0.0.1:9184
  # JSON log lines on stderr, for a log collector
  minerfleet --log-format json watch fleet.ron --no-progress";

pub const STATUS: &str = "\
Examples:
  # desired vs on-chain, commit block, eval block, visibility, uid, incentive
  minerfleet status fleet.ron
  # the same as JSON; exit 0 only when every miner is in sync
  minerfleet status fleet.ron --json";

pub const UPLOAD: &str = "\
Examples:
  # one model for one hotkey: validated, hashed, uploaded, committed
  minerfleet upload --load-model-dir D --hf-repo-id ns/name --competition-id 1 \\
      --wallet-name W --wallet-hotkey H
  # the reference upload_model.py command line runs unchanged
  minerfleet upload --load_model_dir D --hf_repo_id ns/name --competition_id 1 \\
      --wallet.name W --wallet.hotkey H --subtensor.network finney
  # validate and hash only: nothing is uploaded or committed
  minerfleet upload --load-model-dir D --hf-repo-id ns/name --competition-id 1 --dry-run
  # the competitions to pick from
  minerfleet upload --list-competitions --netuid 80

The journal (what a rerun resumes from) is .minerfleet/upload/journal in the working directory;
the summary names it.";

pub const PULL: &str = "\
Examples:
  # download the model uid 12 committed and verify its hash like a validator
  minerfleet pull --uid 12 --netuid 80 --dir models/uid12";

pub const BEST: &str = "\
Examples:
  # the best uid of competition 1 (reference graph.best_uid)
  minerfleet best --competition 1 --netuid 80 --json";

pub const REPO: &str = "\
Examples:
  # the repo URL uid 12 committed, at its commit
  minerfleet repo --uid 12 --netuid 80";

pub const DEVNET: &str = "\
Examples:
  # tiny demo models + dev wallets for a devnet fleet
  minerfleet devnet models fleet.ron
  # local Hub server + chain in the background; prints endpoints and token
  minerfleet devnet up fleet.ron
  # both answering? (exit 0 yes, 1 no)
  minerfleet devnet status
  # stop both
  minerfleet devnet down";

pub const DEVNET_MODELS: &str = "\
Examples:
  # tiny demo models + dev wallets for a devnet fleet
  minerfleet devnet models fleet.ron";

pub const DEVNET_UP: &str = "\
Examples:
  # local Hub server + chain in the background; prints endpoints and token
  minerfleet devnet up fleet.ron
  # faster blocks (default 12 s like mainnet; 0 = a block per transaction)
  minerfleet devnet up --block-time 1";

pub const DEVNET_DOWN: &str = "\
Examples:
  # stop the Hub server and the chain
  minerfleet devnet down";

pub const DEVNET_STATUS: &str = "\
Examples:
  # both answering? (exit 0 yes, 1 no); --json for scripts
  minerfleet devnet status";

pub const DEVNET_TRAIN: &str = "\
Examples:
  # a new checkpoint of every demo model every 45 s, for watch
  minerfleet devnet train fleet.ron --every 45s";

pub const HUB_SERVE: &str = "\
Examples:
  # a local Hub-compatible server
  minerfleet hub serve --port 8765 --data .devnet/hub --token demo=$TOKEN
  # with the limits in units: 8M, 500MB, 1.5GiB (k, M, G, T: powers of 1000; KiB, MiB, GiB, TiB: 1024)
  minerfleet hub serve --data hub-data --token demo=$TOKEN --max-object-size 50GiB --chunk-size 16MiB";

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    /// Runs of whitespace as one space, so README alignment does not matter.
    fn squeeze(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Every command and subcommand (hidden ones aside), with its path (`devnet up`).
    fn commands() -> Vec<(String, clap::Command)> {
        fn walk(prefix: &str, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                let path = format!("{prefix} {}", sub.get_name()).trim().to_string();
                out.push((path.clone(), sub.clone()));
                walk(&path, sub, out);
            }
        }
        let root = super::super::Cli::command();
        let mut out = vec![(String::new(), root.clone())];
        walk("", &root, &mut out);
        out
    }

    #[test]
    fn every_command_has_examples_that_parse_and_are_in_the_readme() {
        let readme = squeeze(include_str!("../../README.md"));
        for (path, cmd) in commands() {
            let help = cmd
                .get_after_long_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            // A command line may go on over lines ending with ` \\`.
            let joined = help.replace(" \\\n", " ");
            let examples: Vec<&str> = joined
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("minerfleet "))
                .collect();
            assert!(
                help.starts_with("Examples:") && !examples.is_empty(),
                "`minerfleet {path}` has no examples in its long help"
            );
            for line in examples {
                let words: Vec<&str> = line.split_whitespace().collect();
                let names: Vec<&str> = path.split_whitespace().collect();
                assert!(
                    names.is_empty() || words.windows(names.len()).any(|w| w == names),
                    "`minerfleet {path}`: example of another command: {line}"
                );
                if let Err(e) = super::super::Cli::try_parse_from(&words) {
                    panic!("`minerfleet {path}`: example does not parse: {line}\n{e}");
                }
                assert!(
                    readme.contains(&squeeze(line)),
                    "`minerfleet {path}`: example not in README.md: {line}"
                );
            }
        }
    }
}
