//! Echo load generator for `make bench`: each connection sends `size` bytes and reads
//! `size` bytes back, as fast as the server answers, for `duration` seconds. One thread per
//! connection with blocking sockets keeps it simple and far cheaper than the server under
//! test. Prints one JSON line: requests, requests/s, p50/p99 latency in microseconds.
//! With `--reconnect`, every request opens a connection of its own and closes it after the
//! reply, so the server's accept and connection set-up are what is measured.
//!
//!     loadgen (--tcp HOST:PORT | --unix PATH) [--size 1024] [--conns 8] [--duration 2]
//!             [--reconnect]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

struct Args {
    tcp: Option<String>,
    unix: Option<String>,
    size: usize,
    conns: usize,
    duration: Duration,
    reconnect: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tcp: None,
        unix: None,
        size: 1024,
        conns: 8,
        duration: Duration::from_secs(2),
        reconnect: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tcp" => args.tcp = Some(value()?),
            "--unix" => args.unix = Some(value()?),
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--conns" => args.conns = value()?.parse().map_err(|e| format!("--conns: {e}"))?,
            "--duration" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                args.duration = Duration::from_secs_f64(secs);
            }
            "--reconnect" => args.reconnect = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tcp.is_none() == args.unix.is_none() {
        return Err("give exactly one of --tcp HOST:PORT and --unix PATH".into());
    }
    Ok(args)
}

trait Stream: Read + Write + Send {
    fn shutdown_write(&self) -> std::io::Result<()>;
}

impl Stream for TcpStream {
    fn shutdown_write(&self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Stream for UnixStream {
    fn shutdown_write(&self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

fn connect(args: &Args) -> std::io::Result<Box<dyn Stream>> {
    Ok(match (&args.tcp, &args.unix) {
        (Some(addr), _) => {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
        (_, Some(path)) => Box::new(UnixStream::connect(path)?),
        _ => unreachable!("checked in parse_args"),
    })
}

/// Runs one client until `deadline`, returning each request's latency in microseconds.
/// A reconnecting client (`stream` None) connects for each request and then closes.
fn drive(
    args: &Args,
    mut stream: Option<Box<dyn Stream>>,
    deadline: Instant,
) -> std::io::Result<Vec<u32>> {
    let request: Vec<u8> = (0..args.size).map(|i| (i % 251) as u8).collect();
    let mut reply = vec![0u8; args.size];
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let mut fresh = None;
        let stream = match stream.as_mut() {
            Some(s) => s,
            None => fresh.insert(connect(args)?),
        };
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        if let Some(s) = fresh {
            // Half-close and wait for the server's close, so the connection is over
            // before the next one starts and its fds are not left to pile up.
            drop_after_eof(s)?;
        }
        latencies.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if reply != request {
            return Err(std::io::Error::other("the echo differs from the request"));
        }
    }
    Ok(latencies)
}

fn drop_after_eof(mut stream: Box<dyn Stream>) -> std::io::Result<()> {
    stream.shutdown_write()?;
    let mut rest = [0u8; 64];
    while stream.read(&mut rest)? != 0 {}
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let args = std::sync::Arc::new(args);
    let streams: Vec<Option<Box<dyn Stream>>> = match (0..args.conns)
        .map(|_| {
            if args.reconnect {
                Ok(None)
            } else {
                connect(&args).map(Some)
            }
        })
        .collect::<Result<_, _>>()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen: connect: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let deadline = started + args.duration;
    let threads: Vec<_> = streams
        .into_iter()
        .map(|s| {
            let args = args.clone();
            std::thread::spawn(move || drive(&args, s, deadline))
        })
        .collect();
    let mut latencies = Vec::new();
    for t in threads {
        match t.join().expect("a load thread panicked") {
            Ok(l) => latencies.extend(l),
            Err(e) => {
                eprintln!("loadgen: {e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    println!(
        "{{\"requests\": {}, \"rps\": {:.1}, \"p50_us\": {}, \"p99_us\": {}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
}
