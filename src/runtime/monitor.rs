//! The monitor's server: a thread that answers each connection on a Unix socket with one
//! JSON line of the loop's `Activity`. It never needs the GIL, so it answers while the
//! loop is blocked; `python -m ferroloop monitor PATH` draws what it says.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::activity::{Activity, SpansSnapshot, BUCKET_BOUNDS_NS};
use super::ticks;

pub(crate) struct Monitor {
    path: PathBuf,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Listens on `path`. A socket file left by a process that is gone is replaced; one
    /// that still answers is not.
    pub(crate) fn serve(
        path: &Path,
        activity: Arc<Activity>,
        pid: u32,
    ) -> std::io::Result<Monitor> {
        let listener = match UnixListener::bind(path) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && UnixStream::connect(path).is_err() =>
            {
                std::fs::remove_file(path)?;
                UnixListener::bind(path)?
            }
            other => other?,
        };
        let stopped = Arc::new(AtomicBool::new(false));
        let stopping = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("ferroloop-monitor".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Relaxed) {
                        break;
                    }
                    if let Ok(mut stream) = stream {
                        activity.mark_watched();
                        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                        let _ = stream.write_all(report(&activity, pid).as_bytes());
                    }
                }
            })?;
        Ok(Monitor {
            path: path.to_owned(),
            stopped,
            thread: Some(thread),
        })
    }

    /// Stops answering and removes the socket file.
    pub(crate) fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopped.store(true, Relaxed);
            // The thread waits in accept(): a connection wakes it to see the flag.
            let _ = UnixStream::connect(&self.path);
            let _ = thread.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One JSON line: the counters, what runs now and for how long, and the tasks as last seen.
pub(crate) fn report(activity: &Activity, pid: u32) -> String {
    let s = activity.snapshot();
    let running = activity.running();
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "{{\"pid\":{pid},\"passes\":{},\"callbacks\":{},\"slow_callbacks\":{},",
        s.passes, s.callbacks, s.slow_callbacks
    );
    spans(&mut out, "lag", &s.lag);
    spans(&mut out, "pass", &s.pass);
    let _ = write!(
        out,
        "\"longest\":{{\"seconds\":{},\"what\":",
        ticks::to_secs(s.longest.ticks)
    );
    string(&mut out, &s.longest.text);
    out.push_str("},\"running\":");
    if running.started == 0 {
        out.push_str("null");
    } else {
        let secs = ticks::to_secs(ticks::now().saturating_sub(running.started));
        let _ = write!(out, "{{\"seconds\":{secs},\"what\":");
        match activity.description(running.started) {
            Some(text) => string(&mut out, &text),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    let (count, tree) = activity.tasks();
    let _ = write!(out, ",\"tasks\":{{\"count\":{count},\"tree\":");
    string(&mut out, &tree);
    out.push_str("}}\n");
    out
}

fn spans(out: &mut String, name: &str, s: &SpansSnapshot) {
    let _ = write!(
        out,
        "\"{name}\":{{\"count\":{},\"sum\":{},\"max\":{},\"buckets\":{:?},\"bounds\":{:?}}},",
        s.count,
        s.sum_ns as f64 * 1e-9,
        s.max_ns as f64 * 1e-9,
        s.buckets,
        BUCKET_BOUNDS_NS.map(|ns| ns as f64 * 1e-9),
    );
}

/// `text` as a JSON string.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}");
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn answers_each_connection_with_a_report_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("ferroloop-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let activity = Arc::new(Activity::new());
        activity.set_tasks(2, "main\n".into());
        let mut monitor = Monitor::serve(&path, activity.clone(), 7).unwrap();
        let mut text = String::new();
        UnixStream::connect(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert!(text.starts_with("{\"pid\":7,\"passes\":0,"), "{text}");
        assert!(
            text.ends_with("\"tasks\":{\"count\":2,\"tree\":\"main\\n\"}}\n"),
            "{text}"
        );
        monitor.stop();
        assert!(!path.exists());
        std::fs::remove_dir(&dir).unwrap();
    }
}
