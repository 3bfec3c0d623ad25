//! Echo load generator for `make bench`: each connection sends `size` bytes and reads
//! `size` bytes back, as fast as the server answers, for `duration` seconds. One thread per
//! connection with blocking sockets keeps it simple and far cheaper than the server under
//! test. Prints one JSON line: requests, requests/s, p50/p99 latency in microseconds.
//! With `--reconnect`, every request opens a connection of its own and closes it after the
//! reply, so the server's accept and connection set-up are what is measured.
//! With `--websocket`, each connection first upgrades to a WebSocket and a request is one
//! binary message of `size` bytes, answered by the same message.
//!
//!     loadgen (--tcp HOST:PORT | --unix PATH) [--size 1024] [--conns 8] [--duration 2]
//!             [--reconnect | --websocket]

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
    websocket: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tcp: None,
        unix: None,
        size: 1024,
        conns: 8,
        duration: Duration::from_secs(2),
        reconnect: false,
        websocket: false,
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
            "--websocket" => args.websocket = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.tcp.is_none() == args.unix.is_none() {
        return Err("give exactly one of --tcp HOST:PORT and --unix PATH".into());
    }
    if args.reconnect && args.websocket {
        return Err("--reconnect and --websocket do not go together".into());
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
    let mut stream: Box<dyn Stream> = match (&args.tcp, &args.unix) {
        (Some(addr), _) => {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            Box::new(s)
        }
        (_, Some(path)) => Box::new(UnixStream::connect(path)?),
        _ => unreachable!("checked in parse_args"),
    };
    if args.websocket {
        upgrade(&mut *stream)?;
    }
    Ok(stream)
}

/// The client's side of the WebSocket opening handshake (RFC 6455, section 4.1). The key
/// is the RFC's example: the server's answer to it is not checked, only its status.
fn upgrade(stream: &mut dyn Stream) -> std::io::Result<()> {
    stream.write_all(
        b"GET / HTTP/1.1\r\nHost: loadgen\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )?;
    // Byte by byte, so that nothing after the response's head is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let status = String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned();
        return Err(std::io::Error::other(format!("no upgrade: {status}")));
    }
    Ok(())
}

/// A binary WebSocket frame carrying `payload`: masked, as a client must send it, or not,
/// as a server answers.
fn frame(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![0x82];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(masked | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(masked | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(masked | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Runs one client until `deadline`, returning each request's latency in microseconds.
/// A reconnecting client (`stream` None) connects for each request and then closes.
fn drive(
    args: &Args,
    mut stream: Option<Box<dyn Stream>>,
    deadline: Instant,
) -> std::io::Result<Vec<u32>> {
    let payload: Vec<u8> = (0..args.size).map(|i| (i % 251) as u8).collect();
    let (request, expected) = if args.websocket {
        (
            frame(&payload, Some([0x37, 0xfa, 0x21, 0x3d])),
            frame(&payload, None),
        )
    } else {
        (payload.clone(), payload)
    };
    let mut reply = vec![0u8; expected.len()];
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
        if reply != expected {
            return Err(std::io::Error::other("the echo differs from the request"));
        }
    }
    if let (true, Some(mut s)) = (args.websocket, stream) {
        // A close frame (empty, masked), so the server sees a clean close, not a dropped one.
        s.write_all(&[0x88, 0x80, 0, 0, 0, 0])?;
        drop_after_eof(s)?;
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
