//! A benchmark, not a check (ignored by `cargo test`; run it with
//! `scripts/bench-failover.sh`): kill -9 the leader of a 3-node cluster in
//! the middle of a job, TRIALS times, and measure the time until the
//! survivors agree on a new master and until the job makes progress again
//! (a shard recorded done after the kill). The killed node is restarted
//! between trials. Prints every trial, then the median and the maximum.

mod common;

use std::time::{Duration, Instant};

use common::clips::make_clip;
use common::cluster::{Cluster, agreed_master, lazy_channel};
use common::{Params, job, upload_file, wait_for};

fn done(info: &vidshard_proto::v1::JobInfo) -> usize {
    info.shards.iter().filter(|s| s.state == "done").count()
}

fn summary(name: &str, mut seconds: Vec<f64>) {
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let max = seconds.last().copied().unwrap_or_default();
    println!(
        "{name}: median {median:.2} s, max {max:.2} s over {} trials",
        seconds.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: scripts/bench-failover.sh runs it"]
async fn failover_trials() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 30, 320, 240, true);
    let mut cluster = Cluster::start(dir.path());
    let (mut to_master, mut to_progress) = (Vec::new(), Vec::new());
    for trial in 1..=trials {
        let leader_address = cluster.formed().await;
        let leader = cluster.index_of(&leader_address).expect("leader is a node");
        let survivors: Vec<String> = cluster
            .addresses()
            .into_iter()
            .filter(|a| *a != leader_address)
            .collect();
        let channel = lazy_channel(&survivors[0]);
        let id = upload_file(
            channel.clone(),
            &format!("trial-{trial}.mp4"),
            &clip,
            &Params::size(160, 120, "mp4"),
        )
        .await;
        let at_kill = wait_for("two shards done", Duration::from_secs(120), || {
            let (channel, id) = (channel.clone(), id.clone());
            async move {
                let info = job(channel, &id).await.ok()?;
                (done(&info) >= 2 && !info.finished).then(|| done(&info))
            }
        })
        .await;
        cluster.kill(leader);
        let killed = Instant::now();
        let master = wait_for(
            "the survivors to agree on a new master",
            Duration::from_secs(30),
            || {
                let (survivors, old) = (survivors.clone(), leader_address.clone());
                async move { agreed_master(&survivors).await.filter(|(m, _)| *m != old) }
            },
        )
        .await;
        let new_master = killed.elapsed().as_secs_f64();
        wait_for(
            "a shard done after the kill",
            Duration::from_secs(60),
            || {
                let (channel, id) = (channel.clone(), id.clone());
                async move { (done(&job(channel, &id).await.ok()?) > at_kill).then_some(()) }
            },
        )
        .await;
        let progressing = killed.elapsed().as_secs_f64();
        println!(
            "trial {trial}: killed {leader_address}; new master {} after {new_master:.2} s; job progressing after {progressing:.2} s",
            master.0
        );
        to_master.push(new_master);
        to_progress.push(progressing);
        wait_for("the job to finish", Duration::from_secs(300), || {
            let (channel, id) = (channel.clone(), id.clone());
            async move {
                job(channel, &id)
                    .await
                    .ok()
                    .filter(|j| j.finished)
                    .map(|j| j.status)
            }
        })
        .await;
        cluster.restart(leader);
    }
    summary("kill -9 of the leader → new master", to_master);
    summary("kill -9 of the leader → job progressing again", to_progress);
}
