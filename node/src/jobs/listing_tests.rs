use super::*;
use crate::params::RawParams;
use crate::store::BlobRef;

/// A table of `n` jobs created at 1, 2, ... ms; every third one failed,
/// every third + 1 completed, the rest processing.
fn table(n: u64) -> JobTable {
    let mut table = JobTable::default();
    let params = RawParams::default().validate().expect("valid");
    for at in 1..=n {
        let blob = BlobRef {
            sha256: "0".repeat(64),
            size: at,
        };
        let id = table.accept(&format!("clip{at}"), params.clone(), blob, vec![], at);
        let status = match at % 3 {
            0 => JobStatus::ProcessingFailed,
            1 => JobStatus::Completed,
            _ => JobStatus::Processing,
        };
        table.update_at(&id, at, |job| job.status = status);
    }
    table
}

fn ids(page: &Page) -> Vec<String> {
    page.jobs.iter().map(|j| j.id.clone()).collect()
}

#[test]
fn pages_go_newest_first_and_resume_after_the_token() {
    let table = table(7);
    let first = page(&table, StateFilter::All, 3, None);
    assert_eq!(ids(&first), ["clip7", "clip6", "clip5"]);
    assert_eq!((first.matching, first.after), (7, 4));
    let token = PageToken::after(first.jobs[2]);
    let token = PageToken::parse(&token.encode())
        .expect("ours")
        .expect("some");
    let second = page(&table, StateFilter::All, 3, Some(&token));
    assert_eq!(ids(&second), ["clip4", "clip3", "clip2"]);
    let token = PageToken::after(second.jobs[2]);
    let last = page(&table, StateFilter::All, 3, Some(&token));
    assert_eq!(ids(&last), ["clip1"]);
    assert_eq!(last.after, 0);
    assert_eq!(page(&table, StateFilter::All, 0, None).jobs.len(), 7);
}

#[test]
fn a_job_created_between_pages_does_not_shift_them() {
    let mut table = table(4);
    let first = page(&table, StateFilter::All, 2, None);
    let token = PageToken::after(first.jobs[1]);
    let params = RawParams::default().validate().expect("valid");
    let blob = BlobRef {
        sha256: "1".repeat(64),
        size: 9,
    };
    table.accept("late", params, blob, vec![], 99);
    let second = page(&table, StateFilter::All, 2, Some(&token));
    assert_eq!(ids(&second), ["clip2", "clip1"]);
}

#[test]
fn filters_pick_states() {
    let table = table(9);
    let active = page(
        &table,
        StateFilter::parse("active").expect("known"),
        0,
        None,
    );
    assert_eq!(ids(&active), ["clip8", "clip5", "clip2"]);
    let failed = page(
        &table,
        StateFilter::parse("FAILED").expect("known"),
        0,
        None,
    );
    assert_eq!(ids(&failed), ["clip9", "clip6", "clip3"]);
    let done = page(
        &table,
        StateFilter::parse("completed").expect("known"),
        0,
        None,
    );
    assert_eq!(done.matching, 3);
    let exact = StateFilter::parse("processing_failed").expect("known");
    assert_eq!(exact, StateFilter::Status(JobStatus::ProcessingFailed));
    assert_eq!(page(&table, exact, 0, None).matching, 3);
}

#[test]
fn unknown_states_and_foreign_tokens_are_refused_with_the_choices() {
    let err = StateFilter::parse("finished").expect_err("unknown");
    assert!(err.contains("use active, completed, failed"), "{err}");
    assert!(err.contains("failed_segmentation"), "{err}");
    for bad in ["x", "12", "abc.def"] {
        assert!(PageToken::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(PageToken::parse("").expect("first page"), None);
}
