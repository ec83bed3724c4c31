//! The machinery of the tables: a [`Scene`] (a temporary folder and HOME with hostile files in it), a [`CliCase`]
//! (how to run the binary in a scene and what must come out), and [`measure`], which runs a child process with a
//! wall-clock limit and an address-space limit and reports its exit code, output, time and peak RSS.

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Address-space limit of every child: a safety net far above any sane run (minerfleet maps libtorch and a few
/// thread stacks); the assertion is on peak RSS, which is far lower.
const ADDRESS_SPACE_LIMIT: u64 = 16 << 30;

/// What a finished (or killed) child did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident set size in MiB (`ru_maxrss` from `wait4`).
    pub peak_rss_mib: u64,
    /// Killed because it ran past the hard limit.
    pub killed: bool,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {:?} after {:.2} s, peak RSS {} MiB{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.peak_rss_mib,
            if self.killed {
                " (KILLED: ran past the hard limit)"
            } else {
                ""
            },
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

fn tail(s: &str) -> &str {
    let start = s.len().saturating_sub(4000);
    let mut start = start;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs `cmd` (stdin closed, output captured), kills it after `hard_limit`, and measures it.
pub fn measure(mut cmd: Command, hard_limit: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (done, killed) = (done.clone(), killed.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + hard_limit;
            while Instant::now() < until {
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                killed.store(true, std::sync::atomic::Ordering::SeqCst);
                // Only the child this harness started, by its PID.
                // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    };
    let mut status = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes into the two locals, valid for the call; the pid is our own child.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    assert_eq!(
        waited,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    // The std handle must not wait again (the child is reaped); forget it.
    std::mem::forget(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Run {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
        peak_rss_mib: (usage.ru_maxrss as u64) / 1024,
        killed: killed.load(std::sync::atomic::Ordering::SeqCst),
    }
}

/// A temporary world for one case: a work folder (the child's working directory), a HOME, variables for the
/// child, and whatever must live as long as the case (servers).
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    keep: Vec<Box<dyn Any>>,
}

impl Scene {
    pub fn new() -> Scene {
        Scene {
            dir: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("tempdir"),
            env: Vec::new(),
            keep: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rel` as a string argument.
    pub fn arg(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.into(), value.into()));
    }

    /// Keeps `thing` (a server) alive until the case ends.
    pub fn keep(&mut self, thing: impl Any) {
        self.keep.push(Box::new(thing));
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    /// A named pipe at `rel` (nobody ever writes to it: opening it for reading blocks forever).
    pub fn fifo(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let c = std::ffi::CString::new(p.to_str().expect("utf-8")).expect("nul");
        assert_eq!(
            // SAFETY: mkfifo reads a NUL-terminated path that outlives the call.
            unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
            0,
            "mkfifo {}",
            p.display()
        );
        p
    }

    pub fn symlink(&self, rel: &str, target: impl AsRef<Path>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, &p).expect("symlink");
        p
    }

    /// A sparse file of `len` bytes (no disk used).
    pub fn sparse(&self, rel: &str, len: u64) -> PathBuf {
        let p = self.write(rel, b"");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(len))
            .expect("set_len");
        p
    }

    /// A valid tiny Llama model folder.
    pub fn model(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        minerfleet::model::save::write_tiny_model(&p, minerfleet::model::save::Family::Llama, 7)
            .expect("tiny model");
        p
    }

    /// A plain btcli hotkey keyfile `wallets/<wallet>/hotkeys/<hotkey>` from a fixed seed; returns its path.
    pub fn keyfile(&self, wallet: &str, hotkey: &str, seed: u8) -> PathBuf {
        use sp_core::Pair;
        use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};
        let seed = [seed; 32];
        let pair = sp_core::sr25519::Pair::from_seed(&seed);
        let public = pair.public();
        let json = serde_json::json!({
            "accountId": format!("0x{}", hex::encode(public.0)),
            "publicKey": format!("0x{}", hex::encode(public.0)),
            "secretSeed": format!("0x{}", hex::encode(seed)),
            "ss58Address": public.to_ss58check_with_version(Ss58AddressFormat::custom(42)),
        });
        let p = self.write(
            &format!("wallets/{wallet}/hotkeys/{hotkey}"),
            json.to_string(),
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        p
    }

    /// `fleet.ron` on the demo subnet with `miners` as `(hotkey, model_dir, repo)`, wallet `w`, wallets in
    /// `wallets/`.
    pub fn fleet(&self, miners: &[(&str, &str, &str)]) -> String {
        let mut text = String::from(
            "Fleet(\n    network: \"local\",\n    netuid: 999,\n    wallets_dir: \"wallets\",\n    \
             defaults: (wallet: \"w\", competition_id: 1),\n    miners: [\n",
        );
        for (hotkey, model_dir, repo) in miners {
            text.push_str(&format!(
                "        Miner(hotkey: \"{hotkey}\", model_dir: \"{model_dir}\", repo: \"{repo}\"),\n"
            ));
        }
        text.push_str("    ],\n)\n");
        self.write("fleet.ron", &text);
        self.arg("fleet.ron")
    }

    /// A one-miner fleet with a valid model and keyfile (the usual starting point of a case that then breaks one
    /// thing): hotkey `h0`, model `models/m0`, repo `ns/model-0`.
    pub fn good_fleet(&self) -> String {
        self.model("models/m0");
        self.keyfile("w", "h0", 1);
        self.fleet(&[("h0", "models/m0", "ns/model-0")])
    }

    /// A TCP port on loopback with nothing listening (bound, then closed).
    pub fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }

    /// Every path under the work folder with its type, size and modification time (symlinks and FIFOs are not
    /// followed or opened).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (String, u64, Option<std::time::SystemTime>)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                let ft = m.file_type();
                if ft.is_dir() {
                    stack.push(p.clone());
                }
                let kind = format!("{ft:?}");
                let mtime = if ft.is_file() {
                    m.modified().ok()
                } else {
                    None
                };
                out.insert(
                    p.strip_prefix(self.dir.path())
                        .expect("prefix")
                        .to_path_buf(),
                    (kind, if ft.is_file() { m.len() } else { 0 }, mtime),
                );
            }
        }
        out
    }

    /// `minerfleet` in this scene: the suite's one command runner (cleared environment plus its allow-list), HOME
    /// and working directory in the scene, the scene's variables.
    pub fn command(&self, args: &[String]) -> Command {
        let mut cmd = crate::support::cmd::minerfleet();
        cmd.env("HOME", self.home.path())
            .current_dir(self.dir.path())
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// One row of the CLI table: how to set the scene up (returns the arguments), and what must come out.
pub struct CliCase {
    pub setup: fn(&mut Scene) -> Vec<String>,
    pub exit: i32,
    /// Each must appear in stdout or stderr (case-insensitive).
    pub says: &'static [&'static str],
    /// None may appear (secrets).
    pub never_says: &'static [&'static str],
    /// Wall-clock bound.
    pub within_s: f64,
    /// Peak RSS bound.
    pub max_rss_mib: u64,
    /// Paths (relative to the scene) the run may create or change; everything else must stay as it was.
    pub may_write: &'static [&'static str],
}

/// The defaults of a row: exit 2, 10 s, 400 MiB, writes nothing.
pub const CLI: CliCase = CliCase {
    setup: |_| Vec::new(),
    exit: 2,
    says: &[],
    never_says: &[],
    within_s: 10.0,
    max_rss_mib: 400,
    may_write: &[],
};

/// Runs one row and asserts everything it promises.
pub fn run_cli(name: &str, case: CliCase) {
    let mut scene = Scene::new();
    let args = (case.setup)(&mut scene);
    let before = scene.snapshot();
    let hard_limit = Duration::from_secs_f64(case.within_s * 2.0 + 20.0);
    let run = measure(scene.command(&args), hard_limit);
    let what = format!(
        "case {name}: minerfleet {}\n{}",
        args.join(" "),
        run.describe()
    );
    assert!(!run.killed, "{what}");
    assert_eq!(run.code, Some(case.exit), "wrong exit code; {what}");
    let text = run.output().to_lowercase();
    for needle in case.says {
        assert!(
            text.contains(&needle.to_lowercase()),
            "the message does not say {needle:?}; {what}"
        );
    }
    for secret in case.never_says {
        assert!(
            !text.contains(&secret.to_lowercase()),
            "the output shows {secret:?}; {what}"
        );
    }
    assert!(
        run.elapsed.as_secs_f64() <= case.within_s,
        "took longer than {} s; {what}",
        case.within_s
    );
    assert!(
        run.peak_rss_mib <= case.max_rss_mib,
        "peak RSS over {} MiB; {what}",
        case.max_rss_mib
    );
    let after = scene.snapshot();
    let allowed = |p: &Path| case.may_write.iter().any(|a| p.starts_with(a));
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p) && !allowed(p))
        .collect();
    assert!(changed.is_empty(), "the run wrote {changed:?}; {what}");
    drop(scene);
}

/// One `#[test]` per row: `cli_cases! { name: CliCase { .. }, ... }`.
macro_rules! cli_cases {
    ($($name:ident: $case:expr,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::adversarial::harness::run_cli(stringify!($name), $case);
            }
        )*
    };
}
pub(crate) use cli_cases;
