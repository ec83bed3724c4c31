//! The adversarial suite: every row is one hostile input or one misbehaving peer, and every row asserts
//!
//! * the outcome: the CLI's exit code (0 ok, 1 problems found, 2 usage or configuration error), or for library
//!   rows the error's kind (`Cause`, "too large", "invalid answer");
//! * a message that names the problem (the file, the field, the URL; never a secret);
//! * bounded time (wall clock of the whole run) and bounded memory (the child's peak RSS from `wait4`; children also
//!   run under an address-space limit so a runaway cannot take the machine down);
//! * that nothing was written (the scene folder is compared before and after) or published (servers count what
//!   they were asked).
//!
//! Tables, so other areas' rows can be added without new machinery:
//!
//! * [`cli`]: the `minerfleet` binary on hostile fleet files, keyfiles, model folders, `.env` and competitions
//!   files, command lines and chain endpoints ([`harness::CliCase`]; one `#[test]` per row).
//! * [`hub`]: the Hub client against servers that misbehave on purpose ([`servers`]): silent, endless, slow,
//!   refusing, not HTTP, garbage JSON, wrong `Content-Length`, looping or foreign `Link`s, stalled uploads. Each row
//!   runs in a child process (this test binary again, one test selected) so its time and peak RSS are its own.
//! * [`properties`]: property tests of the parsers (fleet RON and positions, keyfile JSON, safetensors headers, the
//!   metadata string, the server's commit NDJSON and `Range` headers): never a panic, errors that say what is
//!   wrong.
//!
//! The suite starts everything it needs itself (temporary folders and HOMEs, servers on random loopback ports) and
//! needs no devnet.

mod cli;
mod harness;
mod hub;
mod properties;
mod servers;
