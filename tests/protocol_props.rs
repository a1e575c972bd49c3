//! Property tests: the reply parser never panics, and never yields a path that could
//! leave the system folder or touch .masgen/ or .git/.

use masgen::protocol::{check_path, parse_reply, Change};
use proptest::prelude::*;

fn path_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(".masgen".to_string()),
            Just(".git".to_string()),
            Just("".to_string()),
            "[a-zA-Z0-9_\\\\:~. -]{1,8}"
        ],
        1..5,
    )
    .prop_map(|parts| parts.join("/"))
    .prop_flat_map(|p| {
        prop_oneof![
            Just(p.clone()),
            Just(format!("/{p}")),
            Just(format!("C:{p}"))
        ]
    })
}

fn reply() -> impl Strategy<Value = String> {
    let block = (path_like(), ".{0,40}", 0..4u8).prop_map(|(p, body, kind)| match kind {
        0 => format!("<file path=\"{p}\">\n{body}\n</file>\n"),
        1 => format!(
            "<edit path=\"{p}\">\n<<<<<<< SEARCH\n{body}\n=======\nx\n>>>>>>> REPLACE\n</edit>\n"
        ),
        2 => format!("<delete path=\"{p}\"/>\n"),
        _ => format!("<file path='{p}'>\r\n```\r\n{body}"),
    });
    prop::collection::vec(prop_oneof![block, ".{0,30}\n".prop_map(String::from)], 0..8)
        .prop_map(|v| v.concat())
}

fn safe(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.contains('\0')
        && p.split('/')
            .all(|c| !c.is_empty() && c != ".." && c != "." && c != ".git")
        && p.split('/').next() != Some(".masgen")
        && !(p.len() >= 2 && p.as_bytes()[0].is_ascii_alphabetic() && p.as_bytes()[1] == b':')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn structured_replies_never_yield_unsafe_paths(text in reply()) {
        let parsed = parse_reply(&text);
        for c in &parsed.changes {
            let p = match c { Change::File { path, .. } | Change::Edit { path, .. } | Change::Delete { path } => path.as_str() };
            prop_assert!(safe(p), "unsafe path accepted: {p:?}");
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = parse_reply(&text);
    }

    #[test]
    fn check_path_accepts_only_safe_paths(p in path_like()) {
        if let Ok(safe_path) = check_path(&p) {
            prop_assert!(safe(safe_path.as_str()), "{p:?} -> {:?}", safe_path.as_str());
        }
    }
}

mod edit_props {
    use masgen::protocol::{check_path, Change, Hunk};
    use masgen::workspace::Workspace;
    use proptest::prelude::*;

    fn lines() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("a".to_string()),
                Just("b".to_string()),
                Just("  c".to_string()),
                "[a-c ]{0,4}"
            ],
            0..6,
        )
        .prop_map(|v| v.iter().map(|l| format!("{l}\n")).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the hunks, a file is either fully edited or left exactly as it was,
        /// and nothing appears outside the system folder.
        #[test]
        fn edits_are_all_or_nothing_and_stay_inside(
            original in lines(),
            hunks in prop::collection::vec((lines(), lines()), 1..4),
            target in prop_oneof![Just("f.txt"), Just("../f.txt"), Just("sub/../../f.txt"), Just("/tmp/f.txt"), Just(".masgen/f.txt")],
        ) {
            let outer = tempfile::tempdir().unwrap();
            let root = outer.path().join("sys");
            std::fs::create_dir(&root).unwrap();
            std::fs::write(root.join("f.txt"), &original).unwrap();
            let mut ws = Workspace::prepare(&root, true).unwrap();
            let hunks: Vec<Hunk> = hunks.into_iter().map(|(search, replace)| Hunk { search, replace }).collect();
            let Ok(path) = check_path(target) else {
                // Refused paths never become changes at all.
                prop_assert!(target != "f.txt");
                return Ok(());
            };
            let applied = ws.apply(&[Change::Edit { path, hunks: hunks.clone() }], "001").unwrap();
            let now = std::fs::read_to_string(root.join("f.txt")).unwrap();
            if applied.edit_failures.is_empty() {
                prop_assert_eq!(now, masgen::protocol::apply_hunks("f.txt", &original, &hunks).unwrap());
            } else {
                prop_assert_eq!(now, original, "a failed edit left the file changed");
            }
            let outside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            prop_assert_eq!(outside, vec![std::ffi::OsString::from("sys")]);
        }
    }
}
