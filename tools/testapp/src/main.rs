//! testapp: one static binary behind Gantry's test images. The first argument picks what it does;
//! with no arguments it runs the words of `$TESTAPP_CMD` (handy from a task definition's
//! `environment`), or `serve`.

mod client;
mod server;
mod signals;

use std::process::exit;
use std::thread::sleep;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: testapp <command> [args]
  serve [--port N]             HTTP server (port from --port, $PORT or 8080); routes:
                               / /hostname /env /health /unhealthy /healthy
                               /exit/<code> /burn/<ms> /sleep/<ms>
  exit <code> [--after-ms N]   print `exiting with <code>` and exit with it
  sleep <ms>                   sleep, then exit 0
  echo <words...>              print the words to stdout
  stderr <words...>            print the words to stderr
  log <n> [--interval-ms N]    print `line 1` .. `line <n>`
  burn <ms>                    burn cpu for ms
  ignore-term <ms>             sleep, ignoring SIGTERM (only SIGKILL stops it early)
  health <url>                 GET the url on 127.0.0.1; exit 0 on HTTP 200, else 1";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = match std::env::var("TESTAPP_CMD") {
            Ok(cmd) if !cmd.trim().is_empty() => cmd.split_whitespace().map(String::from).collect(),
            _ => vec!["serve".to_string()],
        };
    }
    let (command, rest) = (args[0].as_str(), &args[1..]);

    if command == "ignore-term" {
        signals::ignore_term();
    } else {
        signals::exit_on_term();
    }

    match command {
        "serve" => {
            let port = match flag(rest, "--port") {
                Some(port) => port,
                None => std::env::var("PORT")
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(8080),
            };
            server::serve(port as u16);
        }
        "exit" => {
            let code = number(rest.first(), "exit code") as i32;
            if let Some(ms) = flag(rest, "--after-ms") {
                sleep(Duration::from_millis(ms));
            }
            println!("exiting with {code}");
            exit(code);
        }
        "sleep" => sleep(Duration::from_millis(number(rest.first(), "ms"))),
        "echo" => println!("{}", rest.join(" ")),
        "stderr" => eprintln!("{}", rest.join(" ")),
        "log" => {
            let n = number(rest.first(), "line count");
            let interval = Duration::from_millis(flag(rest, "--interval-ms").unwrap_or(0));
            for i in 1..=n {
                if i > 1 {
                    sleep(interval);
                }
                // Rust's stdout is line buffered, so each line leaves at once.
                println!("line {i}");
            }
        }
        "burn" => burn(number(rest.first(), "ms")),
        "ignore-term" => {
            println!("ignoring SIGTERM");
            sleep(Duration::from_millis(number(rest.first(), "ms")));
        }
        "health" => {
            let url = rest.first().unwrap_or_else(|| usage("missing url"));
            exit(if client::is_healthy(url) { 0 } else { 1 });
        }
        "help" | "-h" | "--help" => println!("{USAGE}"),
        other => usage(&format!("unknown command {other:?}")),
    }
}

/// Keeps one core busy for `ms` milliseconds.
pub fn burn(ms: u64) {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut x: u64 = 1;
    while Instant::now() < deadline {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

/// The number after `name` in `args` (`--port 8080`), if present.
fn flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    Some(number(args.get(i + 1), name))
}

fn number(arg: Option<&String>, what: &str) -> u64 {
    match arg.map(|a| a.parse::<u64>()) {
        Some(Ok(n)) => n,
        _ => usage(&format!("expected a number for {what}")),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("testapp: {problem}\n{USAGE}");
    exit(2)
}
