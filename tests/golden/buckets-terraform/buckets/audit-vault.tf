# Bucket audit-vault: what the spec's buckets: entry declares. permgen compile writes this
# file; manage the bucket with Terraform or with permgen apply, not both.

resource "alicloud_oss_bucket_worm" "audit-vault" {
  bucket                   = "audit-vault"
  retention_period_in_days = 365
  status                   = "Locked"

  lifecycle {
    prevent_destroy = true
  }
}
