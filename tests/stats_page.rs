//! The status page over real sockets: its HTML, and how it looks in a real headless
//! browser when one is installed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::{browser_or_skip, chromium};
use common::*;

#[test]
fn stats_page_is_self_contained_and_lists_every_backend() {
    let b1 = backend("s1", &[]);
    let b2 = backend("s2", &[]);
    let lb = lb(&[&b1, &b2], &["--admin", "127.0.0.1:0"]);
    get(lb.addr, "/");
    // UP once each backend's first check, spread over the interval, has passed.
    let mut r = get(admin_addr(&lb), "/stats");
    assert!(eventually(Duration::from_secs(5), || {
        r = get(admin_addr(&lb), "/stats");
        r.text().matches(">UP<").count() == 2
    }));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<meta http-equiv=\"refresh\""));
    assert!(page.contains("<meta name=\"viewport\""));
    for b in [&b1, &b2] {
        let row = page
            .lines()
            .find(|l| l.contains(&format!("data-backend=\"{}\"", b.addr)))
            .unwrap_or_else(|| panic!("no row for {}:\n{page}", b.addr));
        assert!(row.contains(">UP<"), "{row}");
    }
    for external in ["<script", "<link", "src=", "http://", "https://", "@import"] {
        assert!(!page.contains(external), "{external} in:\n{page}");
    }
}

/// The rendered `<tr>` of backend `label` in a DOM dump.
fn dom_row<'a>(dom: &'a str, label: &str) -> &'a str {
    let at = dom
        .find(&format!("data-backend=\"{label}\""))
        .unwrap_or_else(|| panic!("no row for {label} in the rendered page:\n{dom}"));
    let start = dom[..at].rfind("<tr").expect("row start");
    let end = at + dom[at..].find("</tr>").expect("row end");
    &dom[start..end]
}

/// The heights of the points of backend `label`'s requests/s chart in the page's HTML,
/// oldest first (1.0 is the top of the chart, 29.0 its bottom).
fn rate_heights(page: &str, label: &str) -> Vec<f64> {
    let row = dom_row(page, label);
    let Some(at) = row.find("<svg class=\"spark rate\"") else {
        return Vec::new();
    };
    let chart = &row[at..at + row[at..].find("</svg>").unwrap_or(0)];
    chart
        .split("points=\"")
        .skip(1)
        .flat_map(|run| run[..run.find('"').unwrap_or(0)].split(' '))
        .filter_map(|xy| xy.split_once(',')?.1.parse().ok())
        .collect()
}

/// An RGB picture decoded from a PNG file.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Picture {
    fn load(path: &Path) -> Picture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        let channels = info.color_type.samples();
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Picture {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// Pixels within a small distance of `color`.
    fn count_near(&self, color: [u8; 3]) -> usize {
        self.rgb.iter().filter(|p| near(**p, color)).count()
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 24)
}

/// The page's colours (src/admin/stats/style.css).
const DOWN_RED: [u8; 3] = [0xc6, 0x28, 0x28];
const RATE_BLUE: [u8; 3] = [0x2f, 0x6f, 0xd6];
const PAGE_BG: [u8; 3] = [0xf3, 0xf4, 0xf7];

/// Takes a screenshot of `url` at `width` x `height` and decodes it.
fn screenshot(browser: &Path, url: &str, name: &str, (width, height): (usize, usize)) -> Picture {
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&shot);
    chromium(
        browser,
        &[
            &format!("--screenshot={}", shot.display()),
            &format!("--window-size={width},{height}"),
            "--hide-scrollbars",
        ],
        url,
    );
    let picture = Picture::load(&shot);
    assert_eq!((picture.width, picture.height), (width, height));
    eprintln!("screenshot of /stats: {}", shot.display());
    picture
}

#[test]
fn stats_page_in_headless_chromium_shows_a_killed_backend_down() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let b1 = backend("alive", &[]);
    let mut b2 = backend("doomed", &[]);
    let (l1, l2) = (b1.addr.to_string(), b2.addr.to_string());
    let lb = lb(
        &[&b1, &b2],
        &[
            "--admin",
            "127.0.0.1:0",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "200ms",
            "--fall",
            "1",
        ],
    );
    let admin = admin_addr(&lb);
    let url = format!("http://{admin}/stats");
    // Traffic until each backend's rate chart has a point at its top, then none until it
    // has dropped to the bottom: a steep segment that shows in a screenshot. A flat line
    // drawn between pixel rows is only anti-aliased pixels, none near the line's colour.
    let (labels, stats) = ([l1.as_str(), l2.as_str()], |lb: &Proc| {
        get(admin_addr(lb), "/stats").text()
    });
    let topped = eventually(Duration::from_secs(30), || {
        assert_eq!(get(lb.addr, "/").status, 200);
        let page = stats(&lb);
        labels
            .iter()
            .all(|l| rate_heights(&page, l).iter().any(|&y| y <= 2.0))
    });
    assert!(topped, "no chart reached its top:\n{}", stats(&lb));
    let dropped = eventually(Duration::from_secs(30), || {
        let page = stats(&lb);
        labels
            .iter()
            .all(|l| rate_heights(&page, l).last().is_some_and(|&y| y >= 28.0))
    });
    assert!(dropped, "no chart dropped to zero:\n{}", stats(&lb));

    let dom = chromium(&browser, &["--dump-dom"], &url);
    assert!(dom.contains("<title>lb · all 2 up</title>"), "{dom}");
    for label in [&l1, &l2] {
        let row = dom_row(&dom, label);
        assert!(row.contains("class=\"backend up\""), "{row}");
        assert!(row.contains(">UP<"), "{row}");
        assert!(row.contains("<polyline"), "a chart with a line: {row}");
    }

    b2.kill();
    assert!(
        eventually(Duration::from_secs(5), || {
            lb.log_text().contains(&format!("backend {l2} DOWN"))
        }),
        "lb never marked {l2} down:\n{}",
        lb.log_text()
    );
    let dom = chromium(&browser, &["--dump-dom"], &url);
    assert!(dom.contains("<title>lb · 1 DOWN</title>"), "{dom}");
    let down = dom_row(&dom, &l2);
    assert!(down.contains("class=\"backend down\""), "{down}");
    assert!(down.contains(">DOWN<"), "{down}");
    assert!(
        down.contains("Connection refused"),
        "the check's error: {down}"
    );
    assert!(dom_row(&dom, &l1).contains(">UP<"));

    // Pictures, left next to the build for a person to look at, and checked: the DOWN
    // backend is red and the charts are drawn at both widths, and a phone needs no
    // sideways scrolling (the right edge below the header is page background).
    let desktop = screenshot(&browser, &url, "stats-desktop.png", (1280, 900));
    let phone = screenshot(&browser, &url, "stats-phone.png", (412, 1600));
    for (name, p) in [("desktop", &desktop), ("phone", &phone)] {
        assert!(p.count_near(DOWN_RED) > 200, "{name}: no red DOWN marking");
        assert!(p.count_near(RATE_BLUE) > 20, "{name}: no chart line");
    }
    let header = (0..phone.height)
        .find(|&y| near(phone.at(2, y), PAGE_BG))
        .expect("the page below its header");
    let overflow = (header..phone.height)
        .flat_map(|y| (phone.width - 4..phone.width).map(move |x| (x, y)))
        .find(|&(x, y)| !near(phone.at(x, y), PAGE_BG));
    assert_eq!(overflow, None, "something reaches the phone's right edge");
}
