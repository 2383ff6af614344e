//! A real browser over HTTP/2: headless Chromium negotiates h2 by ALPN with lb's TLS
//! listener and loads a page from a backend through it.

mod common;

use common::browser::{browser_or_skip, chromium};
use common::tls::{Site, tls_addr};
use common::*;

#[test]
fn chromium_loads_a_page_over_h2_negotiated_by_alpn() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let b = backend("h2page", &[]);
    let site = Site::new();
    let lb = site.lb(&[b.addr], &["--admin", "127.0.0.1:0"]);
    let url = format!("https://{}/headers", tls_addr(&lb));
    let dom = chromium(
        &browser,
        &["--ignore-certificate-errors", "--dump-dom"],
        &url,
    );
    // The backend's echo of the request it got: HTTP/1.1 from lb, for a TLS client.
    assert!(
        dom.contains("GET /headers HTTP/1.1"),
        "{dom}\n{}",
        lb.log_text()
    );
    assert!(dom.contains("X-Forwarded-Proto: https"), "{dom}");
    let admin = admin_addr(&lb);
    assert!(metric(admin, "lb_http2_connections_total") >= 1.0);
    assert!(metric(admin, "lb_http2_streams_total") >= 1.0);
    assert_eq!(metric(admin, "lb_http2_connection_errors_total"), 0.0);
}
