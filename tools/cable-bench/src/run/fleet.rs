//! The client processes (`cable-bench worker`, this binary again), each holding its share of
//! the connections, and the JSON lines they report on stdout, one thread per worker reading
//! them into one channel.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::WorkerConfig;

pub(super) struct Worker {
    child: Child,
    stdin: ChildStdin,
    pid: u32,
}

/// The client processes and their event stream.
pub(super) struct Fleet {
    pub(super) workers: Vec<Worker>,
    rx: mpsc::UnboundedReceiver<(usize, Option<Value>)>,
    pending: Vec<VecDeque<Value>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = writeln!(w.stdin, "{}", json!({"cmd": "exit"}));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for w in &mut self.workers {
            loop {
                if let Ok(Some(_)) = w.child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = w.child.kill();
                    let _ = w.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Fleet {
    pub(super) fn spawn(configs: Vec<WorkerConfig>) -> Result<Fleet, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for cfg in configs {
            let id = cfg.id;
            let arg = serde_json::to_string(&cfg).map_err(|e| e.to_string())?;
            let mut child = Command::new(&exe)
                .arg("worker")
                .arg(arg)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("spawn worker: {e}"))?;
            let stdout = child.stdout.take().ok_or("no worker stdout")?;
            let stdin = child.stdin.take().ok_or("no worker stdin")?;
            let pid = child.id();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => {
                            if tx.send((id, Some(v))).is_err() {
                                return;
                            }
                        }
                        Err(_) => eprintln!("worker {id}: {line}"),
                    }
                }
                let _ = tx.send((id, None));
            });
            workers.push(Worker { child, stdin, pid });
        }
        let n = workers.len();
        Ok(Fleet {
            workers,
            rx,
            pending: vec![VecDeque::new(); n],
        })
    }

    pub(super) fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    pub(super) fn send(&mut self, id: usize, cmd: &Value) -> Result<(), String> {
        let w = &mut self.workers[id];
        writeln!(w.stdin, "{cmd}")
            .and_then(|_| w.stdin.flush())
            .map_err(|e| format!("worker {id}: {e}"))
    }

    /// Waits for one `ev` event from every worker.
    pub(super) async fn collect(
        &mut self,
        ev: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let n = self.workers.len();
        let mut got: Vec<Option<Value>> = vec![None; n];
        for (i, q) in self.pending.iter_mut().enumerate() {
            if let Some(pos) = q.iter().position(|v| v["ev"] == ev) {
                got[i] = q.remove(pos);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while got.iter().any(Option::is_none) {
            let msg = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| {
                    let missing: Vec<usize> = (0..n).filter(|i| got[*i].is_none()).collect();
                    format!("timed out waiting for {ev:?} from worker(s) {missing:?}")
                })?;
            match msg {
                Some((id, Some(v))) => {
                    if v["ev"] == ev && got[id].is_none() {
                        got[id] = Some(v);
                    } else {
                        self.pending[id].push_back(v);
                    }
                }
                Some((id, None)) => return Err(format!("worker {id} exited")),
                None => return Err("all workers gone".into()),
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    pub(super) async fn ask_all(
        &mut self,
        cmd: Value,
        ev: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        for i in 0..self.workers.len() {
            self.send(i, &cmd)?;
        }
        self.collect(ev, timeout).await
    }
}
