//! Railway volume backups for the service's volume: create, list, restore and delete, each
//! waited for. A restore is Railway's staged sequence: restore (a workflow copying the backup
//! into a new volume), commit the staged swap, wait for the new deployment, then find the
//! service's volume instance again (it is a new one).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client::{RailwayError, VolumeBackup, VolumeInstance};
use super::{is_running, RailwayService};

/// How long a workflow may report NotFound before that counts (read-after-write lag).
const NOT_FOUND_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub backup: VolumeBackup,
    pub deployment: String,
    pub volume_instance: String,
    pub previous_volume_instance: String,
    /// Milliseconds in each phase: the copy workflow, the commit, the redeploy.
    pub workflow_ms: f64,
    pub commit_ms: f64,
    pub deploy_ms: f64,
}

impl RailwayService {
    /// The volume instance mounted by the service, looked up afresh (a restore replaces it).
    pub async fn volume_instance(&mut self) -> Result<VolumeInstance, RailwayError> {
        let ids = self.resolve().await?;
        let instances = self
            .client
            .volume_instances(&ids.project_id, &ids.environment_id)
            .await?;
        instances
            .into_iter()
            .find(|v| v.service_id.as_deref() == Some(ids.service_id.as_str()))
            .ok_or_else(|| {
                RailwayError::NotFound(format!(
                    "service {:?} has no volume mounted in this environment",
                    self.spec.service
                ))
            })
    }

    /// The service volume's backups, newest first.
    pub async fn backups(&mut self) -> Result<Vec<VolumeBackup>, RailwayError> {
        let volume = self.volume_instance().await?;
        self.backups_of(&volume).await
    }

    async fn backups_of(&self, volume: &VolumeInstance) -> Result<Vec<VolumeBackup>, RailwayError> {
        let mut backups = self.client.backup_list(&volume.id).await?;
        backups.sort_by_key(|b| std::cmp::Reverse(b.created_at));
        Ok(backups)
    }

    /// A backup of `volume` by id, by name (the newest of that name) or `latest`.
    async fn find_backup(
        &self,
        volume: &VolumeInstance,
        wanted: &str,
    ) -> Result<VolumeBackup, RailwayError> {
        let backups = self.backups_of(volume).await?;
        let found = if wanted == "latest" {
            backups.first()
        } else {
            backups
                .iter()
                .find(|b| b.id == wanted)
                .or_else(|| backups.iter().find(|b| b.name.as_deref() == Some(wanted)))
        };
        found.cloned().ok_or_else(|| {
            RailwayError::NotFound(format!(
                "no volume backup {wanted:?} (there are {})",
                backups.len()
            ))
        })
    }

    /// Create a named backup and wait until Railway lists it.
    pub async fn create_backup(&mut self, name: &str) -> Result<VolumeBackup, RailwayError> {
        let volume = self.volume_instance().await?;
        let started: DateTime<Utc> = Utc::now() - chrono::Duration::seconds(5);
        let workflow = self.client.backup_create(&volume.id, name).await?;
        self.wait_workflow(workflow.as_deref(), "the backup")
            .await?;
        // The mutation does not return the backup: the newest of this name made since we asked.
        let began = Instant::now();
        loop {
            let found = self
                .client
                .backup_list(&volume.id)
                .await?
                .into_iter()
                .filter(|b| b.name.as_deref() == Some(name) && b.created_at >= started)
                .max_by_key(|b| b.created_at);
            if let Some(backup) = found {
                return Ok(backup);
            }
            if began.elapsed() > self.spec.timeout.as_duration() {
                return Err(RailwayError::Timeout {
                    what: format!("backup {name:?}"),
                    goal: "appear in the backup list".into(),
                    waited: crate::duration::format_duration(began.elapsed()),
                    last: "not listed".into(),
                });
            }
            tokio::time::sleep(self.spec.poll_interval.as_duration()).await;
        }
    }

    pub async fn delete_backup(&mut self, wanted: &str) -> Result<VolumeBackup, RailwayError> {
        let volume = self.volume_instance().await?;
        let backup = self.find_backup(&volume, wanted).await?;
        let workflow = self.client.backup_delete(&volume.id, &backup.id).await?;
        self.wait_workflow(workflow.as_deref(), "the deletion")
            .await?;
        Ok(backup)
    }

    /// Restore, commit and redeploy; refuses when other changes are already staged (the
    /// commit would deploy them too) unless `allow_staged`.
    pub async fn restore_backup(
        &mut self,
        wanted: &str,
        allow_staged: bool,
    ) -> Result<RestoreReport, RailwayError> {
        let ids = self.resolve().await?;
        let volume = self.volume_instance().await?;
        let backup = self.find_backup(&volume, wanted).await?;
        let staged = self.client.staged_changes(&ids.environment_id).await?;
        if !staged.is_empty() && !allow_staged {
            return Err(RailwayError::StagedChanges {
                patch: staged.id.unwrap_or_default(),
            });
        }
        let before = self.latest().await?.id;
        let began = Instant::now();
        let workflow = self.client.backup_restore(&volume.id, &backup.id).await?;
        self.wait_workflow(workflow.as_deref(), "the restore")
            .await?;
        let workflow_ms = crate::duration::millis(began.elapsed());
        let committed = Instant::now();
        self.client
            .commit_staged(
                &ids.environment_id,
                &format!("vecdrill: restore volume backup {}", backup.id),
            )
            .await?;
        let commit_ms = crate::duration::millis(committed.elapsed());
        let deploying = Instant::now();
        let deployment = self.wait_new_deployment(&before).await?;
        let deploy_ms = crate::duration::millis(deploying.elapsed());
        let now_mounted = self.volume_instance().await?;
        Ok(RestoreReport {
            backup,
            deployment,
            volume_instance: now_mounted.id,
            previous_volume_instance: volume.id,
            workflow_ms,
            commit_ms,
            deploy_ms,
        })
    }

    /// Poll a workflow until Complete; Error fails with Railway's message.
    async fn wait_workflow(&self, workflow: Option<&str>, what: &str) -> Result<(), RailwayError> {
        let Some(id) = workflow else {
            // No workflow id to follow: the caller's own checks (listing, staged changes,
            // deployment) decide; say so in the log.
            tracing::warn!(
                "Railway returned no workflow id for {what}; continuing on the next checks"
            );
            return Ok(());
        };
        let began = Instant::now();
        let mut interval = self.spec.poll_interval.as_duration();
        loop {
            let result = self.client.workflow_status(id).await?;
            self.polled(&format!("{what} (workflow {id})"), &result.status, began);
            match result.status.as_str() {
                "Complete" => return Ok(()),
                "Error" => {
                    return Err(RailwayError::Failed {
                        what: format!("{what} (workflow {id})"),
                        status: "Error".into(),
                        detail: result.error,
                    })
                }
                "NotFound" if began.elapsed() > NOT_FOUND_GRACE => {
                    return Err(RailwayError::Failed {
                        what: format!("{what} (workflow {id})"),
                        status: "NotFound".into(),
                        detail: None,
                    })
                }
                _ => {}
            }
            if began.elapsed() > self.spec.timeout.as_duration() {
                return Err(RailwayError::Timeout {
                    what: format!("{what} (workflow {id})"),
                    goal: "complete".into(),
                    waited: crate::duration::format_duration(began.elapsed()),
                    last: result.status,
                });
            }
            tokio::time::sleep(interval).await;
            interval = interval
                .mul_f64(1.5)
                .min(self.spec.poll_interval.as_duration() * 4);
        }
    }

    /// After a commit: the latest deployment must change from `before` and become healthy.
    async fn wait_new_deployment(&mut self, before: &str) -> Result<String, RailwayError> {
        let began = Instant::now();
        loop {
            let latest = self.latest().await?;
            self.polled(&format!("deployment {}", latest.id), &latest.status, began);
            if latest.id != before {
                if super::FAILED.contains(&latest.status.as_str()) {
                    return Err(RailwayError::Failed {
                        what: format!("deployment {}", latest.id),
                        status: latest.status,
                        detail: None,
                    });
                }
                if is_running(&latest) {
                    return Ok(latest.id);
                }
            }
            if began.elapsed() > self.spec.timeout.as_duration() {
                return Err(RailwayError::Timeout {
                    what: "the service".into(),
                    goal: "redeploy after the commit".into(),
                    waited: crate::duration::format_duration(began.elapsed()),
                    last: format!("latest deployment {} {}", latest.id, latest.status),
                });
            }
            tokio::time::sleep(self.spec.poll_interval.as_duration()).await;
        }
    }
}
