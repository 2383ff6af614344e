//! A sparkline: a small inline SVG of the last minutes of one series, drawn on the server
//! at each refresh of the page (no script, nothing fetched).

use std::fmt::Write;

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 30.0;

/// Writes an `<svg>` of `values` (oldest first; `None` is a gap) scaled to their maximum,
/// with `POINTS` slots across so that a young series grows from the right. `class` picks
/// its colour in the page's style.
pub fn sparkline(out: &mut String, values: &[Option<f64>], slots: usize, class: &str, title: &str) {
    let top = values
        .iter()
        .flatten()
        .fold(0.0_f64, |a, &b| a.max(b))
        .max(f64::MIN_POSITIVE);
    let step = WIDTH / slots.saturating_sub(1).max(1) as f64;
    let first = slots.saturating_sub(values.len());
    let _ = write!(
        out,
        "<svg class=\"spark {class}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" role=\"img\" aria-label=\"{title}\"><title>{title}</title>\
         <line class=\"base\" x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\"/>"
    );
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if !run.is_empty() {
            let _ = write!(out, "<polyline points=\"{}\"/>", run.trim_end());
            run.clear();
        }
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let x = (first + i) as f64 * step;
                // A 1px margin keeps the line's top visible.
                let y = 1.0 + (HEIGHT - 2.0) * (1.0 - v / top);
                let _ = write!(run, "{x:.1},{y:.1} ");
            }
            None => flush(&mut run, out),
        }
    }
    flush(&mut run, out);
    out.push_str("</svg>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_scale_to_the_maximum_and_break_at_gaps() {
        let mut out = String::new();
        sparkline(
            &mut out,
            &[Some(0.0), Some(2.0), None, Some(1.0)],
            5,
            "rate",
            "req/s",
        );
        assert!(out.starts_with("<svg class=\"spark rate\""), "{out}");
        assert!(out.contains("<title>req/s</title>"));
        // Four values in five slots: they start at the second slot (x = 30).
        assert!(
            out.contains(
                "<polyline points=\"30.0,29.0 60.0,1.0\"/><polyline points=\"120.0,15.0\"/>"
            ),
            "{out}"
        );
        assert!(out.ends_with("</svg>"));
        let mut empty = String::new();
        sparkline(&mut empty, &[], 5, "rate", "x");
        assert!(!empty.contains("polyline"));
    }
}
