//! The TLS profile of the load benchmark (`LOAD_PROFILE=tls`): the registry is behind
//! HTTPS, as real ones are, and the proxies pay for TLS on their upstream side.
//!
//! A test CA and a certificate for 127.0.0.1 are made with the `openssl` command at run
//! time (never committed). An nginx "front" terminates TLS with that certificate and
//! passes requests to the in-process origin (origin.rs), naming itself as the token
//! realm; its CPU is not measured. One
//! blob is downloaded, interleaved, through:
//!
//! - nginx, tuned (issue 13's buffer settings), `proxy_pass https://front` with
//!   `proxy_ssl_verify on` against the test CA and keep-alive (OpenSSL);
//! - layerpipe, verify_digests off and on, the front listed with `endpoint`
//!   `https://127.0.0.1:PORT` and `ca_file` the test CA (rustls; a blob gets a TLS
//!   connection of its own).
//!
//! Both with the hyper client and with curl, each with the proxy's CPU per GiB, as the
//! loopback table has them. `LOAD_BLOB_MIB` (default 1024) and `LOAD_RUNS` apply, and
//! `LOAD_VARIANTS` adds other layerpipe builds as rows (verify_digests off).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::blobs::{Blobs, TTFB_BLOB_BYTES};
use super::client::{client, curl_download, download, Endpoint};
use super::options::{require_nginx, Options};
use super::origin::Origin;
use super::procfs::{clock_ticks, cpu_seconds, peak_rss_mib};
use super::proxy::{free_port, set_mode, Proxy};
use super::report::{cell, mbps, median, GIB, MIB};

/// The certificate files.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it, in `dir`.
fn certificates(dir: &Path) -> Result<Certificates, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: [Vec<String>; 3] = [
        ["req", "-x509"]
            .iter()
            .chain(&ec)
            .map(|s| s.to_string())
            .chain(
                [
                    "-days",
                    "2",
                    "-subj",
                    "/CN=layerpipe load bench CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]
                .map(str::to_owned),
            )
            .chain(["-keyout".into(), path("ca.key"), "-out".into(), path("ca.pem")])
            .collect(),
        ["req"]
            .iter()
            .chain(&ec)
            .map(|s| s.to_string())
            .chain(["-subj".into(), "/CN=127.0.0.1".into(), "-keyout".into(), path("server.key")])
            .chain(["-out".into(), path("server.csr")])
            .collect(),
        [
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &path("server.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &path("server.ext"),
            "-out",
            &path("server.pem"),
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for args in steps {
        let output = Command::new("openssl")
            .args(&args)
            .output()
            .map_err(|e| format!("cannot run openssl: {e} (apt-get install -y openssl)"))?;
        if !output.status.success() {
            return Err(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr)));
        }
    }
    Ok(Certificates { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") })
}

/// nginx's `http` block settings every nginx here shares: logs and temp paths in `dir`.
fn nginx_http_common(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "access_log off; client_body_temp_path {d}/client_body; proxy_temp_path {d}/proxy; \
         fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;"
    )
}

/// The TLS front: HTTPS on 127.0.0.1, plain HTTP to the origin.
fn start_front(nginx: &Path, dir: &Path, origin_host: &str, certs: &Certificates) -> Result<Proxy, String> {
    let port = free_port()?;
    let config = format!(
        "pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  {common}
  upstream origin {{ server {origin_host}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_buffering on; proxy_buffer_size 256k; proxy_buffers 16 256k; proxy_busy_buffers_size 512k;
      proxy_max_temp_file_size 0;
      # The origin names its plain-http token endpoint; an https registry must name an
      # https realm (layerpipe refuses the downgrade), so the front names itself.
      proxy_hide_header WWW-Authenticate;
      add_header WWW-Authenticate 'Bearer realm=\"https://127.0.0.1:{port}/token\",service=\"bench\"' always;
    }}
  }}
}}
",
        d = dir.display(),
        common = nginx_http_common(dir),
        cert = certs.cert.display(),
        key = certs.key.display(),
    );
    Proxy::start_nginx_config(nginx, dir, port, &config)
}

/// Tuned nginx proxying to the front over HTTPS, checking its certificate.
fn start_nginx_https(
    nginx: &Path,
    dir: &Path,
    front_host: &str,
    token: &str,
    certs: &Certificates,
) -> Result<Proxy, String> {
    let port = free_port()?;
    let config = format!(
        "pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  {common}
  upstream front {{ server {front_host}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass https://front;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      proxy_buffering on; proxy_buffer_size 256k; proxy_buffers 16 256k; proxy_busy_buffers_size 512k;
      proxy_max_temp_file_size 0;
      # nginx cannot do the registry's token dance: the token is fixed here.
      proxy_set_header Authorization \"Bearer {token}\";
    }}
  }}
}}
",
        d = dir.display(),
        common = nginx_http_common(dir),
        ca = certs.ca.display(),
    );
    Proxy::start_nginx_config(nginx, dir, port, &config)
}

/// One path's samples.
#[derive(Clone, Debug, Default)]
pub struct TlsSamples {
    pub mbps: Vec<f64>,
    pub cpu_per_gib: Vec<f64>,
    pub curl_mbps: Vec<f64>,
    pub curl_cpu_per_gib: Vec<f64>,
    /// The proxy's peak RSS after both downloads of a run (fresh processes each run).
    pub peak_rss_mib: Vec<f64>,
}

/// What the TLS profile found.
#[derive(Clone, Debug)]
pub struct TlsReport {
    pub blob_mib: u64,
    pub runs: usize,
    pub rows: Vec<(String, TlsSamples)>,
}

/// Runs the TLS profile.
pub fn run(options: &Options) -> Result<TlsReport, String> {
    require_nginx(&options.nginx)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let size = options.blob_mib * MIB;
    let blobs = Arc::new(Blobs::new(&[size, TTFB_BLOB_BYTES]));
    let origin = runtime.block_on(Origin::start(blobs.clone()))?;
    let origin_host = origin.host();
    let client = client();
    let ticks = clock_ticks();
    let work = tempfile::Builder::new().prefix("layerpipe-tls-").tempdir().map_err(|e| e.to_string())?;
    set_mode(work.path(), 0o755)?;
    let certs = certificates(&work.path().join("certs"))?;
    // nginx's worker may run as nobody: let it read the key.
    for file in [&certs.ca, &certs.cert, &certs.key] {
        set_mode(file, 0o644)?;
    }
    set_mode(&work.path().join("certs"), 0o755)?;
    let front = start_front(&options.nginx, &work.path().join("front"), &origin_host, &certs)?;
    let front_host = format!("127.0.0.1:{}", front.port);
    let labels = [
        "nginx, tuned, proxy_pass https:// (OpenSSL)",
        "layerpipe, verify_digests off (rustls)",
        "layerpipe, verify_digests on (rustls)",
    ];
    let mut rows: Vec<(String, TlsSamples)> = labels
        .iter()
        .map(|l| l.to_string())
        .chain(options.variants.iter().map(|v| format!("layerpipe {}, verify_digests off (rustls)", v.name)))
        .map(|l| (l, TlsSamples::default()))
        .collect();
    for run in 0..options.runs {
        let dir = work.path().join(format!("run{run}"));
        let layerpipe_config = |verify: bool, extra: &str| {
            format!(
                r#"{{{extra}"verify_digests":{verify},"index":{{"dir":""}},"registries":{{"{front_host}":{{"endpoint":"https://{front_host}","ca_file":"{}"}}}}}}"#,
                certs.ca.display()
            )
        };
        let mut proxies = vec![
            start_nginx_https(&options.nginx, &dir.join("nginx"), &front_host, origin.token(), &certs)?,
            Proxy::start_layerpipe_config(&options.layerpipe, &dir.join("off"), &layerpipe_config(false, ""))?,
            Proxy::start_layerpipe_config(&options.layerpipe, &dir.join("on"), &layerpipe_config(true, ""))?,
        ];
        for (n, v) in options.variants.iter().enumerate() {
            let config = layerpipe_config(false, &v.extra_config);
            proxies.push(Proxy::start_layerpipe_config(&v.binary, &dir.join(format!("variant{n}")), &config)?);
        }
        for (i, proxy) in proxies.iter().enumerate() {
            let endpoint = Endpoint { base: proxy.base(), authorization: None, layerpipe: !proxy.nginx };
            // Warm up: the TLS connection (nginx keeps it), ping and token.
            let small = endpoint.url(&front_host, blobs.digest(TTFB_BLOB_BYTES));
            runtime.block_on(download(&client, &small, None, TTFB_BLOB_BYTES))?;
            let url = endpoint.url(&front_host, blobs.digest(size));
            let before = cpu_seconds(proxy.worker, ticks)?;
            let d = runtime.block_on(download(&client, &url, None, size))?;
            let used = cpu_seconds(proxy.worker, ticks)? - before;
            rows[i].1.mbps.push(mbps(size, d.elapsed));
            rows[i].1.cpu_per_gib.push(used / (size as f64 / GIB));
            let before = cpu_seconds(proxy.worker, ticks)?;
            rows[i].1.curl_mbps.push(curl_download(&url, None, size)?);
            let used = cpu_seconds(proxy.worker, ticks)? - before;
            rows[i].1.curl_cpu_per_gib.push(used / (size as f64 / GIB));
            rows[i].1.peak_rss_mib.push(peak_rss_mib(proxy.worker)?);
        }
        eprintln!("tls run {run} done");
    }
    drop(front);
    Ok(TlsReport { blob_mib: options.blob_mib, runs: options.runs, rows })
}

impl TlsReport {
    /// The table for BENCHMARKS.md, and the CPU target.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "TLS profile: {} MiB blob from an HTTPS registry (nginx front, test CA), {} interleaved runs (median [min–max])\n",
            self.blob_mib, self.runs
        );
        let _ = writeln!(
            out,
            "| path | 1 stream, MB/s | proxy CPU s/GiB | curl: 1 stream, MB/s | curl: proxy CPU s/GiB | peak RSS MiB |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for (label, s) in &self.rows {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} | {} |",
                cell(&s.mbps, 0),
                cell(&s.cpu_per_gib, 2),
                cell(&s.curl_mbps, 0),
                cell(&s.curl_cpu_per_gib, 2),
                cell(&s.peak_rss_mib, 1)
            );
        }
        let m = |v: &[f64]| median(v).unwrap_or(f64::NAN);
        let (nginx, off) = (&self.rows[0].1, &self.rows[1].1);
        let _ = writeln!(
            out,
            "\n- CPU per GiB on the TLS path, layerpipe (verify off) ≤ nginx's: hyper client {:.2} vs {:.2} s = {:.2}×, curl {:.2} vs {:.2} s = {:.2}× — {}",
            m(&off.cpu_per_gib),
            m(&nginx.cpu_per_gib),
            m(&off.cpu_per_gib) / m(&nginx.cpu_per_gib),
            m(&off.curl_cpu_per_gib),
            m(&nginx.curl_cpu_per_gib),
            m(&off.curl_cpu_per_gib) / m(&nginx.curl_cpu_per_gib),
            if m(&off.cpu_per_gib) <= m(&nginx.cpu_per_gib) && m(&off.curl_cpu_per_gib) <= m(&nginx.curl_cpu_per_gib) {
                "**met**"
            } else {
                "**not met**"
            }
        );
        for (label, s) in &self.rows[3..] {
            let _ = writeln!(
                out,
                "- {label}: CPU per GiB {:.2}× nginx's (curl {:.2}×), speed {:.2}× (curl {:.2}×); this build's against it: CPU {:.2}× (curl {:.2}×)",
                m(&s.cpu_per_gib) / m(&nginx.cpu_per_gib),
                m(&s.curl_cpu_per_gib) / m(&nginx.curl_cpu_per_gib),
                m(&s.mbps) / m(&nginx.mbps),
                m(&s.curl_mbps) / m(&nginx.curl_mbps),
                m(&off.cpu_per_gib) / m(&s.cpu_per_gib),
                m(&off.curl_cpu_per_gib) / m(&s.curl_cpu_per_gib),
            );
        }
        let _ = writeln!(
            out,
            "- this build (verify off): speed {:.2}× nginx's (curl {:.2}×)",
            m(&off.mbps) / m(&nginx.mbps),
            m(&off.curl_mbps) / m(&nginx.curl_mbps),
        );
        out
    }
}
