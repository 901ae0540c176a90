//! The watch page of a job (pure): `node/assets/watch.html` with the
//! job's id, the player script and the manifest filled in. Every URL in
//! it is relative to the page (`/s/{grant}/watch/{id}`), so the grant in
//! the page's path carries over to the manifest and every segment, and
//! the scripts resolve to `/assets/…` even behind a proxy that adds a
//! path prefix.

use super::assets::WATCH_HTML;
use super::route::Player;

/// The page for `job` playing with `player`; `other` is the other player
/// when the job publishes its manifest too (the page links to it).
pub fn render(job: &str, player: Player, other: Option<Player>) -> String {
    let (script, manifest) = match player {
        Player::Hls => ("../../../assets/hls.min.js", "master.m3u8"),
        Player::Dash => ("../../../assets/dash.all.min.js", "manifest.mpd"),
    };
    let config = serde_json::json!({
        "id": job,
        "player": name(player),
        "manifest": format!("../v/{job}/{manifest}"),
        "other": other.map(name),
    });
    WATCH_HTML
        .replace("__TITLE__", &html_escape(job))
        .replace("__SCRIPT__", script)
        .replace("__CONFIG__", &script_safe(&config.to_string()))
}

fn name(player: Player) -> &'static str {
    match player {
        Player::Hls => "hls",
        Player::Dash => "dash",
    }
}

/// Text safe between HTML tags and in attribute values.
fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that cannot end the `<script>` element it sits in (`</script>`,
/// `<!--`): every `<` becomes `\u003c`, which JSON strings allow.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hls_page_loads_hls_js_and_the_master_playlist() {
        let page = render("clip.mp4", Player::Hls, Some(Player::Dash));
        assert!(page.contains("<title>clip.mp4 · vidshard</title>"));
        assert!(page.contains("<script src=\"../../../assets/hls.min.js\"></script>"));
        assert!(
            page.contains("\"manifest\":\"../v/clip.mp4/master.m3u8\""),
            "{page}"
        );
        assert!(page.contains("\"other\":\"dash\""));
        assert!(page.contains("window.vidshard"));
        assert!(!page.contains("__"), "every placeholder is filled");
    }

    #[test]
    fn the_dash_page_loads_dash_js_and_the_mpd() {
        let page = render("clip", Player::Dash, None);
        assert!(page.contains("<script src=\"../../../assets/dash.all.min.js\"></script>"));
        assert!(page.contains("\"manifest\":\"../v/clip/manifest.mpd\""));
        assert!(page.contains("\"other\":null"));
        assert!(page.contains("setQualityFor"));
    }

    #[test]
    fn nothing_in_a_name_escapes_its_place() {
        // Route parsing only lets `[A-Za-z0-9._-]` through; the page does
        // not rely on it.
        let page = render("</script><b x='1'>&", Player::Hls, None);
        assert!(page.contains("<title>&lt;/script&gt;&lt;b x=&#39;1&#39;&gt;&amp; · vidshard"));
        assert!(page.contains("\\u003c/script>\\u003cb"));
        assert_eq!(page.matches("</script>").count(), 2);
    }
}
