# Bucket logs-dr: what the spec's buckets: entry declares. permgen compile writes this file;
# manage the bucket with Terraform or with permgen apply, not both.

resource "alicloud_oss_bucket_versioning" "logs-dr" {
  bucket = "logs-dr"
  status = "Enabled"

  lifecycle {
    prevent_destroy = true
  }
}
