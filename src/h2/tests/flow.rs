//! Flow-control windows (§6.9).

use crate::h2::error::ErrorCode;
use crate::h2::flow::{RecvWindow, Window};

const MAX: u32 = (1 << 31) - 1;

#[test]
fn section_6_9_1_a_window_never_passes_2_pow_31_minus_1() {
    let mut w = Window::new(65_535);
    assert_eq!(w.grow(MAX - 65_535), Ok(()));
    assert_eq!(w.get(), i64::from(MAX));
    assert_eq!(w.grow(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    assert_eq!(
        w.get(),
        i64::from(MAX),
        "a refused increment changes nothing"
    );
}

#[test]
fn section_6_9_1_taking_more_than_the_window_is_refused() {
    let mut w = Window::new(10);
    assert_eq!(w.take(10), Ok(()));
    assert_eq!(w.take(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    assert_eq!(w.sendable(), 0);
}

#[test]
fn section_6_9_2_a_settings_change_may_make_a_window_negative() {
    let mut w = Window::new(65_535);
    w.take(60_000).unwrap();
    assert_eq!(w.adjust(-65_535), Ok(()));
    assert_eq!(w.get(), -60_000);
    assert_eq!(w.sendable(), 0);
    w.grow(60_010).unwrap();
    assert_eq!(w.sendable(), 10);
    assert_eq!(w.adjust(i64::from(MAX)), Err(ErrorCode::FLOW_CONTROL_ERROR));
}

#[test]
fn section_6_9_credit_goes_back_in_halves_of_the_window() {
    let mut r = RecvWindow::new(1000);
    r.receive(1000).unwrap();
    assert_eq!(r.receive(1), Err(ErrorCode::FLOW_CONTROL_ERROR));
    assert_eq!(r.release(499), None);
    assert_eq!(r.release(1), Some(500));
    assert_eq!(r.available(), 500);
    assert_eq!(r.release(500), Some(500));
    assert_eq!(r.available(), 1000);
}
