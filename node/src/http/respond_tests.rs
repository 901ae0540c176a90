use futures::StreamExt as _;

use super::*;
use crate::store::BlobStore;

const TAG: &str = "\"abc\"";

fn ask(range: Option<&str>) -> Ask {
    Ask {
        range: range.map(str::to_string),
        ..Ask::default()
    }
}

fn text_body(body: &'static [u8]) -> Representation {
    Representation {
        source: Source::Bytes(Bytes::from_static(body)),
        size: body.len() as u64,
        kind: Kind::Playlist,
        cache: policy::REVALIDATE,
        etag: TAG.into(),
    }
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The body's frames.
async fn frames(response: Response) -> Vec<Bytes> {
    response
        .into_body()
        .into_data_stream()
        .map(|frame| frame.expect("frame"))
        .collect()
        .await
}

async fn bytes(response: Response) -> Vec<u8> {
    frames(response).await.concat()
}

#[tokio::test]
async fn a_whole_body_says_what_it_is() {
    let response = send(&ask(None), text_body(b"#EXTM3U\n")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-length"), Some("8"));
    assert_eq!(header(&response, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&response, "etag"), Some(TAG));
    assert_eq!(header(&response, "cache-control"), Some("no-cache"));
    assert_eq!(
        header(&response, "content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(bytes(response).await, b"#EXTM3U\n");
}

#[tokio::test]
async fn one_range_is_a_206_and_a_bad_one_a_416() {
    let response = send(&ask(Some("bytes=1-3")), text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, "content-range"), Some("bytes 1-3/10"));
    assert_eq!(header(&response, "content-length"), Some("3"));
    assert_eq!(bytes(response).await, b"123");
    let response = send(&ask(Some("bytes=-2")), text_body(b"0123456789")).await;
    assert_eq!(bytes(response).await, b"89");
    let response = send(&ask(Some("bytes=10-")), text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&response, "content-range"), Some("bytes */10"));
    let response = send(&ask(Some("bytes=0-1,3-4")), text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes(response).await, b"0123456789");
}

#[tokio::test]
async fn if_range_for_another_version_gets_the_whole_body() {
    let mut asked = ask(Some("bytes=1-3"));
    asked.if_range = Some("\"old\"".into());
    let response = send(&asked, text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::OK);
    asked.if_range = Some(TAG.into());
    let response = send(&asked, text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let asked = Ask {
        head: true,
        ..ask(Some("bytes=2-"))
    };
    let response = send(&asked, text_body(b"0123456789")).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, "content-length"), Some("8"));
    assert!(bytes(response).await.is_empty());
}

#[tokio::test]
async fn a_current_copy_is_a_304() {
    let asked = Ask {
        if_none_match: vec!["W/\"abc\"".into()],
        ..Ask::default()
    };
    let response = not_modified(&asked, TAG, policy::IMMUTABLE).expect("304");
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&response, "etag"), Some(TAG));
    assert_eq!(header(&response, "cache-control"), Some(policy::IMMUTABLE));
    assert!(not_modified(&Ask::default(), TAG, policy::IMMUTABLE).is_none());
}

#[tokio::test]
async fn errors_are_one_uncached_line() {
    let response = text(StatusCode::FORBIDDEN, "link expired\nsecond line", false);
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    assert_eq!(header(&response, "content-length"), Some("13"));
    assert_eq!(bytes(response).await, b"link expired\n");
    let response = preflight(StatusCode::NO_CONTENT);
    assert!(header(&response, "access-control-allow-headers").is_some_and(|h| h.contains("Range")));
}

#[tokio::test]
async fn a_blob_streams_in_chunks_and_stays_pinned_until_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("store");
    let content: Vec<u8> = (0..3 * CHUNK + 123).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("segment");
    tokio::fs::write(&file, &content).await.expect("write");
    let blob = store.import(&file).await.expect("import");
    let body = || Representation {
        source: Source::File {
            path: store.path(&blob.sha256).expect("path"),
            pin: store.pin(&blob.sha256),
        },
        size: blob.size,
        kind: Kind::Segment,
        cache: policy::IMMUTABLE,
        etag: policy::blob_etag(&blob.sha256),
    };
    let response = send(&ask(None), body()).await;
    assert!(
        store.is_pinned(&blob.sha256),
        "pinned while the body is unsent"
    );
    let got = frames(response).await;
    assert!(
        got.len() >= 4 && got.iter().all(|f| f.len() <= CHUNK),
        "{}",
        got.len()
    );
    assert_eq!(got.concat(), content);
    assert!(!store.is_pinned(&blob.sha256), "released once sent");
    let first = CHUNK as u64 - 5;
    let last = 2 * CHUNK as u64 + 7;
    let response = send(&ask(Some(&format!("bytes={first}-{last}"))), body()).await;
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        bytes(response).await,
        content[first as usize..=last as usize]
    );
}
