//! masgen's binary: parse arguments, run, exit with the code the run chose.

use clap::Parser;

fn main() {
    let args = masgen::cli::with_default_subcommand(std::env::args_os().collect());
    let cli = masgen::cli::Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(3);
        }
    };
    let code = runtime.block_on(masgen::cli::run(cli));
    // Don't wait for detached log followers.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
