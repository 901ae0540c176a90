//! A per-task work directory under `<data>/tmp`, removed when the work
//! ends, also when the work is cancelled mid-way (then in the background),
//! and on the next start if the node died before that.

use std::path::{Path, PathBuf};

pub struct Scratch {
    path: Option<PathBuf>,
}

impl Scratch {
    pub async fn create(tmp: &Path, name: &str) -> std::io::Result<Self> {
        // The name is a sanitised id; the uuid keeps retries apart.
        let path = tmp.join(format!("work-{name}-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&path).await?;
        Ok(Self { path: Some(path) })
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new("/nonexistent"))
    }

    pub async fn remove(mut self) {
        if let Some(path) = self.path.take()
            && let Err(e) = tokio::fs::remove_dir_all(&path).await
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a work directory");
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = tokio::fs::remove_dir_all(&path).await;
            });
        }
    }
}
