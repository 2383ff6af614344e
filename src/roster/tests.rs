use super::*;

/// The pool every backend here serves in.
const P: &str = "default";

fn spec(label: &str, port: u16) -> BackendSpec {
    BackendSpec {
        pool: P.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        label: label.into(),
        weight: 1,
    }
}

fn lookup(label: &str, port: u16, weight: u32) -> Lookup {
    Lookup {
        pool: P.into(),
        label: label.into(),
        weight,
        at: format!("servers.txt:{port}"),
        addr: Ok(SocketAddr::from(([127, 0, 0, 1], port))),
    }
}

/// Where lb listens in these tests: traffic on 8080, the admin listener on 8081.
fn own() -> OwnAddrs {
    let at = |port| Some(SocketAddr::from(([127, 0, 0, 1], port)));
    OwnAddrs::of_flags(at(8080), None, at(8081))
}

/// Reloads `r` with `(label, port, weight)` lines that all resolve.
fn reload(r: &mut Roster, lines: &[(&str, u16, u32)]) -> Result<Vec<String>, String> {
    r.reload(
        lines.iter().map(|&(l, p, w)| lookup(l, p, w)).collect(),
        &own(),
        false,
    )
}

/// Edits a roster with `f` and returns what changed.
fn changes(r: &mut Roster, f: impl FnOnce(&mut Roster)) -> Vec<Change> {
    let before = r.snapshot();
    f(r);
    diff(&before, &r.snapshot())
}

fn abc() -> Roster {
    Roster::new(&[spec("a", 1), spec("b", 2), spec("c", 3)])
}

#[test]
fn a_reload_adds_removes_and_reweights_in_one_version() {
    let mut r = abc();
    let got = changes(&mut r, |r| {
        let kept = reload(r, &[("a", 1, 1), ("c", 3, 5), ("d", 4, 1)]);
        assert_eq!(kept, Ok(vec![]));
    });
    assert_eq!(
        got,
        [
            Change::Left(1),
            Change::Weight {
                id: 2,
                from: 1,
                to: 5
            },
            Change::Joined(3),
        ]
    );
    assert_eq!(r.version(), 1);
    assert_eq!(r.slot(1).map(|s| s.role), Some(Role::Leaving));
    let same = changes(&mut r, |r| {
        reload(r, &[("a", 1, 1), ("c", 3, 5), ("d", 4, 1)]).unwrap();
    });
    assert!(same.is_empty(), "{same:?}");
    assert_eq!(r.version(), 1, "an unchanged file makes no new version");
}

#[test]
fn ids_stay_put_and_a_slot_is_reused_only_once_released() {
    let mut r = abc();
    assert_eq!(r.remove(None, "b"), Some(1));
    assert_eq!(r.remove(None, "b"), None, "already removed");
    let (id, new) = r.add((P, "d"), spec("d", 4).addr, None);
    assert_eq!((id, new), (3, true), "b's slot is still in use");
    assert_eq!(changes(&mut r, |r| r.release(1)), [Change::Vacated(1)]);
    assert_eq!(r.find(None, "b"), None);
    let got = changes(&mut r, |r| {
        assert_eq!(r.add((P, "e"), spec("e", 5).addr, Some(2)), (1, true));
    });
    assert_eq!(got, [Change::Joined(1)]);
    assert_eq!(r.slot(1).map(|s| (s.weight, s.rank)), Some((2, 4)));
}

#[test]
fn a_backend_listed_again_before_it_has_left_returns_to_its_slot() {
    let mut r = abc();
    r.remove(None, "c");
    let got = changes(&mut r, |r| {
        reload(r, &[("a", 1, 1), ("b", 2, 1), ("c", 3, 1)]).unwrap();
    });
    assert_eq!(got, [Change::Returned(2)]);
    assert_eq!(r.slot(2).map(|s| s.role), Some(Role::Ready));
}

#[test]
fn a_reload_forgets_runtime_roles_and_weights() {
    let mut r = abc();
    r.set_role(None, "a", Role::Drain);
    r.set_weight(None, "b", 7);
    r.add((P, "z"), spec("z", 9).addr, None);
    let got = changes(&mut r, |r| {
        reload(r, &[("a", 1, 1), ("b", 2, 1), ("c", 3, 1)]).unwrap();
    });
    assert!(got.contains(&Change::Role {
        id: 0,
        from: Role::Drain,
        to: Role::Ready
    }));
    assert!(got.contains(&Change::Weight {
        id: 1,
        from: 7,
        to: 1
    }));
    assert!(got.contains(&Change::Left(3)));
}

#[test]
fn bad_reloads_change_nothing() {
    let mut r = abc();
    assert!(r.reload(vec![], &own(), false).is_err());
    let twice = reload(&mut r, &[("a", 1, 1), ("a", 1, 1)]).unwrap_err();
    assert!(
        twice.contains("given twice (servers.txt:1 and servers.txt:1)"),
        "{twice}"
    );
    let looped = reload(&mut r, &[("a", 1, 1), ("lb", 8080, 1)]).unwrap_err();
    assert!(looped.contains("lb's own --listen address"), "{looped}");
    let admin = reload(&mut r, &[("a", 1, 1), ("lb", 8081, 1)]).unwrap_err();
    assert!(admin.contains("lb's own --admin address"), "{admin}");
    let zero = reload(&mut r, &[("a", 1, 1), ("z", 0, 1)]).unwrap_err();
    assert!(
        zero.contains("backend z (servers.txt:0) has port 0"),
        "{zero}"
    );
    let unknown = Lookup {
        pool: P.into(),
        label: "new:80".into(),
        weight: 1,
        at: "servers.txt:2".into(),
        addr: Err("cannot resolve backend 'new:80'".into()),
    };
    assert_eq!(
        r.reload(vec![lookup("a", 1, 1), unknown], &own(), false),
        Err("servers.txt:2: cannot resolve backend 'new:80'".into())
    );
    assert_eq!(r.version(), 0);
}

#[test]
fn a_name_that_stops_resolving_keeps_its_address() {
    let mut r = abc();
    let failing = Lookup {
        pool: P.into(),
        label: "b".into(),
        weight: 1,
        at: "servers.txt:2".into(),
        addr: Err("cannot resolve backend 'b'".into()),
    };
    let kept = r
        .reload(
            vec![lookup("a", 1, 1), failing, lookup("c", 3, 1)],
            &own(),
            false,
        )
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].ends_with("b keeps address 127.0.0.1:2"), "{kept:?}");
    assert_eq!(r.version(), 0);
}

#[test]
fn runtime_edits_find_backends_by_label_or_address() {
    let mut r = abc();
    assert_eq!(r.set_role(None, "127.0.0.1:2", Role::Maint), Some(1));
    assert_eq!(r.set_weight(None, "nope", 3), None);
    let moved = SocketAddr::from(([127, 0, 0, 9], 2));
    let got = changes(&mut r, |r| r.set_address(1, moved));
    assert_eq!(
        got,
        [Change::Address {
            id: 1,
            from: spec("b", 2).addr,
            to: moved
        }]
    );
    let (id, new) = r.add((P, "b"), moved, Some(4));
    assert_eq!((id, new), (1, false));
    assert_eq!(
        r.slot(1).map(|s| (s.role, s.weight)),
        Some((Role::Maint, 4)),
        "PUT sets the weight and leaves the role alone"
    );
}

#[test]
fn a_diff_across_several_versions_sees_a_reused_slot_as_a_new_backend() {
    let mut r = abc();
    let before = r.snapshot();
    r.remove(None, "a");
    r.release(0);
    r.add((P, "x"), spec("x", 7).addr, None);
    let got = diff(&before, &r.snapshot());
    assert_eq!(
        got,
        [Change::Left(0), Change::Vacated(0), Change::Joined(0)]
    );
    let got = changes(&mut r, |r| {
        reload(r, &[("c", 3, 1), ("b", 2, 1), ("x", 7, 1)]).unwrap();
    });
    assert_eq!(got, [Change::Reordered]);
}

#[test]
fn an_added_backend_passes_the_command_line_checks() {
    let r = abc();
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(r.check_add((P, "d"), at(4), "PUT", &own()), Ok(()));
    assert_eq!(
        r.check_add((P, "a"), at(9), "PUT", &own()),
        Ok(()),
        "a listed one moves"
    );
    let twice = r
        .check_add((P, "x"), at(2), "PUT /backends/x", &own())
        .unwrap_err();
    assert!(
        twice.contains("given twice (listed as b and PUT /backends/x)"),
        "{twice}"
    );
    let looped = r.check_add((P, "x"), at(8080), "PUT", &own()).unwrap_err();
    assert!(looped.contains("lb's own --listen address"), "{looped}");
    let admin = r.check_add((P, "x"), at(8081), "PUT", &own()).unwrap_err();
    assert!(admin.contains("lb's own --admin address"), "{admin}");
    assert!(
        r.check_add((P, "x"), at(0), "PUT", &own())
            .unwrap_err()
            .contains("port 0")
    );
}

#[test]
fn giving_up_what_a_removed_backend_owes_is_one_change_until_it_comes_back() {
    let mut r = abc();
    let got = changes(&mut r, |r| {
        assert_eq!(r.give_up(None, "b"), Some(1));
    });
    assert_eq!(got, [Change::Left(1), Change::GaveUp(1)]);
    assert!(r.owed_given_up(1));
    let again = changes(&mut r, |r| {
        assert_eq!(r.give_up(None, "b"), Some(1), "a removed one too");
    });
    assert_eq!(again, [], "already given up");
    assert_eq!(r.remove(None, "b"), None, "removing needs a listed one");
    let back = changes(&mut r, |r| {
        r.add((P, "b"), spec("b", 2).addr, None);
    });
    assert_eq!(back, [Change::Returned(1)]);
    assert!(!r.owed_given_up(1), "what it owes from now on is delivered");
    assert_eq!(r.give_up(None, "nobody"), None);
}
