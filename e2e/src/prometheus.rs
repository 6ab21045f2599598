//! A real Prometheus server (Debian's `prometheus` binary) scraping Weir's gateway proxies,
//! for the demo and the end-to-end tests: a scrape config written into a directory, the
//! process on a loopback address, and waits that poll its HTTP API with a deadline.

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// What to run when Prometheus is missing.
pub const INSTALL: &str = "scripts/install-deps.sh test installs Debian's prometheus package";

/// Whether a `prometheus` binary is on PATH.
pub fn installed() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "command -v prometheus"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The scrape config of one job, `weir-gateway`, scraping `targets` (admin addresses of
/// gateway proxies, whose `/metrics` is the default path) every `interval` (`500ms`).
pub fn scrape_config(targets: &[SocketAddr], interval: &str) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "global: {{scrape_interval: {interval}, scrape_timeout: {interval}}}\nscrape_configs:\n- job_name: weir-gateway\n  static_configs:\n  - targets: [{}]\n",
        list.join(", ")
    )
}

/// A Prometheus process; killed on drop.
pub struct Prometheus {
    /// Its HTTP address.
    pub addr: SocketAddr,
    child: Child,
    config: PathBuf,
    dir: PathBuf,
}

// === impl Prometheus ===

impl Prometheus {
    /// Writes the scrape config into `dir` (its data goes to `dir/data`), starts Prometheus
    /// on `addr`, scraping `targets` every `interval`, and waits (30 s at most) until it is
    /// ready. Fails, naming the install step, when prometheus is not installed.
    pub async fn start(
        addr: SocketAddr,
        dir: &Path,
        targets: &[SocketAddr],
        interval: &str,
    ) -> Result<Self> {
        anyhow::ensure!(installed(), "prometheus is not installed: {INSTALL}");
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets, interval))
            .with_context(|| config.display().to_string())?;
        let child = Self::spawn(addr, &config, dir)?;
        let mut p = Self {
            addr,
            child,
            config,
            dir: dir.to_path_buf(),
        };
        p.wait_ready().await?;
        Ok(p)
    }

    fn spawn(addr: SocketAddr, config: &Path, dir: &Path) -> Result<Child> {
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start prometheus")
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited with {status} before it was ready ({last})");
            }
            match http_get(self.addr, "/-/ready").await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() > deadline {
                bail!("prometheus on {} not ready within 30 s: {last}", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (30 s at most) until Prometheus has scraped `targets` targets successfully:
    /// its service discovery hands targets to the scraper only every 5 s.
    pub async fn wait_scraping(&self, targets: usize) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let body = http_get(self.addr, "/api/v1/query?query=up").await;
            let up = body
                .as_ref()
                .ok()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|v| v["data"]["result"].as_array().cloned())
                .unwrap_or_default();
            let scraped = up.iter().filter(|r| r["value"][1] == "1").count();
            if scraped >= targets {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("Prometheus scraped {scraped} of {targets} targets within 30 s: {body:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The URL a Prometheus analysis source reads.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The scrape config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub async fn stop(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Starts it again on the same address, config and data.
    pub async fn restart(&mut self) -> Result<()> {
        self.child = Self::spawn(self.addr, &self.config, &self.dir)?;
        self.wait_ready().await
    }
}

/// A plain HTTP/1.0 GET (2 s to connect, 5 s to read), returning the body of a 200.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .context("read timed out")??;
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_config_lists_every_gateway_admin_address() {
        let a: SocketAddr = "127.130.1.5:9990".parse().unwrap();
        let b: SocketAddr = "127.130.1.6:9990".parse().unwrap();
        let text = scrape_config(&[a, b], "500ms");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["global"]["scrape_interval"], "500ms");
        let job = &doc["scrape_configs"][0];
        assert_eq!(job["job_name"], "weir-gateway");
        let targets: Vec<&str> = job["static_configs"][0]["targets"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(targets, ["127.130.1.5:9990", "127.130.1.6:9990"]);
    }
}
