//! An ffmpeg that takes its time: a shell wrapper a node is started with
//! (`--ffmpeg`), so a test can see a job in a stage that is otherwise
//! over in milliseconds. Only calls naming `trigger` among their
//! arguments are slowed; the real ffmpeg does the work.

use std::path::Path;

/// Writes `dir/name`: an ffmpeg that, when one of its arguments is
/// `trigger`, sleeps `before` seconds before running and `after` seconds
/// after it ends (keeping its exit status). Answers its path.
pub fn slow_ffmpeg(dir: &Path, name: &str, trigger: &str, before: f64, after: f64) -> String {
    let path = dir.join(name);
    let script = format!(
        "#!/bin/bash\nslow=0\nfor a in \"$@\"; do\n  if [ \"$a\" = '{trigger}' ]; then slow=1; break; fi\ndone\n\
         [ $slow = 1 ] && sleep {before}\nffmpeg \"$@\"\nstatus=$?\n[ $slow = 1 ] && sleep {after}\nexit $status\n"
    );
    std::fs::write(&path, script).expect("write the wrapper");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make it executable");
    path.to_str().expect("utf8").to_string()
}
