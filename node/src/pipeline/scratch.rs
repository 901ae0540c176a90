//! A per-job work directory under `<data>/tmp`, removed when the job ends
//! (and on the next start if the node died before that).

use std::path::{Path, PathBuf};

pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub async fn create(tmp: &Path, job_id: &str) -> std::io::Result<Self> {
        // The job id is already sanitised; the uuid keeps retries apart.
        let path = tmp.join(format!("job-{job_id}-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::create_dir_all(&path).await?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn remove(self) {
        if let Err(e) = tokio::fs::remove_dir_all(&self.path).await {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a work directory");
        }
    }
}
