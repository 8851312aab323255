//! The `knhk-store` command line, end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_knhk-store"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("knhk-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const A: &str = "0b9c2b6e-3a4f-4d6e-9f1a-2b3c4d5e6f70";
const B: &str = "7f1e0d2c-4b5a-4968-8776-655443322110";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pack_list_get_info_verify() {
    let dir = scratch("pack");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join(format!("{A}.xml")), b"<approve/>").unwrap();
    std::fs::write(input.join(B), [0xFF, 0x00, 0x7F]).unwrap();
    let store = dir.join("w.store");

    let out = run(&["pack", s(&input), "-o", s(&store)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["list", s(&store)]);
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains(&format!("{A}\t10")) && listing.contains(&format!("{B}\t3")),
        "{listing}"
    );

    let out = run(&["get", s(&store), B]);
    assert!(out.status.success());
    assert_eq!(out.stdout, [0xFF, 0x00, 0x7F]);

    let out = run(&["info", s(&store)]);
    let info = String::from_utf8(out.stdout).unwrap();
    assert!(
        info.contains("version 3") && info.contains("workflows:  2"),
        "{info}"
    );

    let out = run(&["verify", s(&store)]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("ok (2 workflows)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifests_and_upgrades() {
    let dir = scratch("manifest");
    std::fs::write(dir.join("a.txt"), b"first").unwrap();
    std::fs::write(dir.join("manifest"), format!("# workflows\n{A} a.txt\n\n")).unwrap();
    let store = dir.join("m.store");
    let out = run(&[
        "pack",
        "--manifest",
        s(&dir.join("manifest")),
        "-o",
        s(&store),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A version-1 file, as the design document describes it, upgraded.
    let mut v1 = Vec::new();
    v1.extend_from_slice(uuid::Uuid::parse_str(B).unwrap().as_bytes());
    v1.extend_from_slice(&4_u64.to_le_bytes());
    v1.extend_from_slice(b"v1!!");
    std::fs::write(dir.join("old.v1"), &v1).unwrap();
    let info = String::from_utf8(run(&["info", s(&dir.join("old.v1"))]).stdout).unwrap();
    assert!(info.contains("version 1"), "{info}");
    let out = run(&["upgrade", s(&dir.join("old.v1")), s(&dir.join("new.v3"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run(&["get", s(&dir.join("new.v3")), B]).stdout, b"v1!!");
    assert!(run(&["verify", s(&dir.join("new.v3"))]).status.success());

    // A version-2 file, as knhk wrote them before the compact index:
    // still read, and upgraded with the same workflows.
    let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2-four.store");
    let info = String::from_utf8(run(&["info", s(&v2)]).stdout).unwrap();
    assert!(info.contains("version 2"), "{info}");
    let out = run(&["upgrade", s(&v2), s(&dir.join("from-v2.v3"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = String::from_utf8(run(&["info", s(&dir.join("from-v2.v3"))]).stdout).unwrap();
    assert!(
        info.contains("version 3") && info.contains("workflows:  4"),
        "{info}"
    );
    assert_eq!(
        run(&["list", s(&v2)]).stdout,
        run(&["list", s(&dir.join("from-v2.v3"))]).stdout
    );
    assert!(run(&["verify", s(&dir.join("from-v2.v3"))])
        .status
        .success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_say_what_is_wrong_and_exit_non_zero() {
    let dir = scratch("errors");
    let missing = run(&["list", s(&dir.join("nope.store"))]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open"));

    std::fs::write(dir.join("bad.store"), b"not a store at all").unwrap();
    let bad = run(&["verify", s(&dir.join("bad.store"))]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("truncated"));

    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("not-a-uuid.xml"), b"x").unwrap();
    let out = run(&["pack", s(&input), "-o", s(&dir.join("x.store"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("named by their UUID"));

    let store = dir.join("one.store");
    std::fs::remove_file(input.join("not-a-uuid.xml")).unwrap();
    std::fs::write(input.join(A), b"x").unwrap();
    assert!(run(&["pack", s(&input), "-o", s(&store)]).status.success());
    let absent = run(&["get", s(&store), B]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&absent.stderr).contains("no workflow has this id"));
    let not_uuid = run(&["get", s(&store), "xyz"]);
    assert!(String::from_utf8_lossy(&not_uuid.stderr).contains("is not a UUID"));

    assert_eq!(
        run(&["frobnicate"]).status.code(),
        Some(2),
        "usage errors exit 2"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_writes_specs_that_pack_into_a_store() {
    let dir = scratch("generate");
    let specs = dir.join("specs");
    let out = run(&["generate", "--count", "25", "--seed", "11", s(&specs)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&specs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 25);
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.starts_with("@prefix yawl:"));
        assert!((1024..=32 * 1024).contains(&text.len()));
    }
    // The same seed, the same files.
    let again = dir.join("again");
    assert!(
        run(&["generate", "--count", "25", "--seed", "11", s(&again)])
            .status
            .success()
    );
    for file in &files {
        let twin = again.join(file.file_name().unwrap());
        assert_eq!(std::fs::read(file).unwrap(), std::fs::read(twin).unwrap());
    }
    let store = dir.join("g.store");
    let out = run(&["pack", s(&specs), "-o", s(&store)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["list", s(&store)]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 25);
    assert!(run(&["verify", s(&store)]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compressed_stores_pack_read_verify_and_upgrade_both_ways() {
    let dir = scratch("compress");
    let specs = dir.join("specs");
    let out = run(&["generate", "--count", "50", "--seed", "5", s(&specs)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sources: Vec<(String, Vec<u8>)> = std::fs::read_dir(&specs)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
            (stem, std::fs::read(&path).unwrap())
        })
        .collect();
    assert_eq!(sources.len(), 50);
    let listing = |store: &Path| {
        let out = run(&["list", s(store)]);
        assert!(out.status.success());
        let mut lines: Vec<_> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let mut expected: Vec<_> = sources
        .iter()
        .map(|(id, data)| format!("{id}\t{}", data.len()))
        .collect();
    expected.sort();

    for (name, options, dictionary) in [
        ("dict.store", &["--dict-size", "4096"][..], true),
        ("plain.store", &["--no-dict"][..], false),
    ] {
        let store = dir.join(name);
        let mut args = vec!["pack", "--compress", "--level", "5"];
        args.extend(options);
        args.extend([s(&specs), "-o", s(&store)]);
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info = String::from_utf8(run(&["info", s(&store)]).stdout).unwrap();
        assert!(
            info.contains("version 4") && info.contains("workflows:  50"),
            "{info}"
        );
        assert!(info.contains("level:      5"), "{info}");
        assert_eq!(info.contains("dictionary: none"), !dictionary, "{info}");
        if dictionary {
            assert!(
                info.contains("dictionary: ") && info.contains(" bytes\n"),
                "{info}"
            );
        }
        assert_eq!(listing(&store), expected, "{name}");
        for (id, data) in &sources {
            let out = run(&["get", s(&store), id]);
            assert!(out.status.success(), "{name} {id}");
            assert_eq!(&out.stdout, data, "{name} {id}");
        }
        let out = run(&["verify", s(&store)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8(out.stdout)
            .unwrap()
            .contains("ok (50 workflows)"));

        // Back to version 3, and compressed again from there.
        let plain = dir.join(format!("{name}.v3"));
        assert!(run(&["upgrade", s(&store), s(&plain)]).status.success());
        let info = String::from_utf8(run(&["info", s(&plain)]).stdout).unwrap();
        assert!(info.contains("version 3"), "{info}");
        assert_eq!(listing(&plain), expected);
        assert!(run(&["verify", s(&plain)]).status.success());
        let again = dir.join(format!("{name}.again"));
        let mut args = vec!["upgrade", "--compress"];
        args.extend(options);
        args.extend([s(&plain), s(&again)]);
        assert!(run(&args).status.success());
        let info = String::from_utf8(run(&["info", s(&again)]).stdout).unwrap();
        assert!(info.contains("version 4"), "{info}");
        assert_eq!(listing(&again), expected);
        assert!(run(&["verify", s(&again)]).status.success());
        let (id, data) = &sources[17];
        assert_eq!(&run(&["get", s(&again), id]).stdout, data);
    }

    // Compression options without --compress are usage errors.
    for option in [
        &["--level", "9"][..],
        &["--no-dict"],
        &["--dict-size", "4096"],
    ] {
        let mut args = vec!["pack"];
        args.extend(option);
        let output = dir.join("never.store");
        args.extend([s(&specs), "-o", s(&output)]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{option:?}");
        assert!(!output.exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
