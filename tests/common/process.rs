//! The built binary (`CARGO_BIN_EXE_layerpipe`) as users run it: started with a config
//! file, its address read from its `layerpipe serving … listen=` log line, its log kept
//! (read on a thread, so it never blocks on a full pipe) for tests that search it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// layerpipe's binary, serving until stopped or dropped.
pub struct Process {
    child: Child,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _config: tempfile::NamedTempFile,
}

impl Process {
    /// Starts the binary with `config_json` (which should listen on `127.0.0.1:0`) at
    /// `RUST_LOG=rust_log`, and waits until it serves.
    pub fn start(config_json: &str, rust_log: &str) -> Process {
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), config_json).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_layerpipe"))
            .arg("--config")
            .arg(config.path())
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start layerpipe");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = lines.next().expect("layerpipe logged `layerpipe serving` before exiting").unwrap();
            log.lock().unwrap().push(line.clone());
            if let Some(at) = line.find("listen=") {
                break line[at + "listen=".len()..].split_whitespace().next().unwrap().to_owned();
            }
        };
        let kept = log.clone();
        let reader = std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| kept.lock().unwrap().push(l)));
        Process { child, base: format!("http://{addr}"), log, reader: Some(reader), _config: config }
    }

    /// Stops it and answers everything it logged.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
