//! nginx configurations: the `proxy_*` directives of the project's own reverse-proxy
//! config (`deploy/nginx.conf`, or its equivalent when there is none), and the same
//! tuned for large downloads. Comparing with nginx as the project deploys it and as a
//! user would tune it keeps the comparison fair to nginx.

use std::path::Path;

/// The directives of the project's nginx `location` that proxies to layerpipe, and where
/// they came from: `deploy/nginx.conf` when the repository has one, else the equivalent
/// written here.
pub(super) fn project_nginx_directives(project_dir: &Path) -> (String, Vec<String>) {
    let path = project_dir.join("deploy/nginx.conf");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(directives) = proxy_location_directives(&text) {
            return ("deploy/nginx.conf".into(), directives);
        }
    }
    // deploy/nginx.conf does not exist (or has no proxying location): this is what README
    // describes — layerpipe behind a reverse proxy, HTTP/1.1 upstream, the body streamed
    // through as it arrives (proxy_buffering off) rather than buffered.
    let builtin = [
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "proxy_set_header Host $host;",
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_read_timeout 300s;",
    ];
    ("project-equivalent".into(), builtin.iter().map(|d| (*d).to_owned()).collect())
}

/// The `proxy_*` directives (except `proxy_pass`, which the benchmark points at the
/// origin) of the first `location` block with a `proxy_pass`.
fn proxy_location_directives(config: &str) -> Option<Vec<String>> {
    let text: String = config.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut rest = text.as_str();
    while let Some(at) = rest.find("location") {
        let after = &rest[at..];
        let open = after.find('{')?;
        let body_start = at + open + 1;
        // The block's end, counting nested braces.
        let mut depth = 1;
        let mut end = None;
        for (i, c) in rest[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(body_start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end?;
        let body = &rest[body_start..end];
        if body.contains("proxy_pass") {
            let directives = body
                .split(';')
                .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|d| d.starts_with("proxy_") && !d.starts_with("proxy_pass "))
                .map(|d| format!("{d};"))
                .collect();
            return Some(directives);
        }
        rest = &rest[end + 1..];
    }
    None
}

/// The project's directives with buffering turned on, as a user tuning nginx for large
/// downloads would set it (issue 13): a 256k first buffer, 16 × 256k buffers per request,
/// 512k of them busy sending at once, and no temp file, so nginx reads ahead of a slow
/// client in large reads without touching the disk.
pub(super) fn tuned(directives: &[String]) -> Vec<String> {
    let replaced = [
        "proxy_buffering ",
        "proxy_buffer_size ",
        "proxy_buffers ",
        "proxy_busy_buffers_size ",
        "proxy_max_temp_file_size ",
    ];
    directives
        .iter()
        .filter(|d| !replaced.iter().any(|r| d.starts_with(r)))
        .cloned()
        .chain(
            [
                "proxy_buffering on;",
                "proxy_buffer_size 256k;",
                "proxy_buffers 16 256k;",
                "proxy_busy_buffers_size 512k;",
                "proxy_max_temp_file_size 0;",
            ]
            .map(str::to_owned),
        )
        .collect()
}
