//! The `minerfleet` command: a thin clap front end over the library (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
