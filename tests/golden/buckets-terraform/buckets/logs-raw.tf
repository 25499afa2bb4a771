# Bucket logs-raw: what the spec's buckets: entry declares. permgen compile writes this
# file; manage the bucket with Terraform or with permgen apply, not both.

data "alicloud_ram_users" "logs-raw_user_analytics-bot" {
  name_regex = "^analytics-bot$"

  lifecycle {
    postcondition {
      condition     = length(self.users) == 1
      error_message = "bucket logs-raw: user:analytics-bot of the spec is not one RAM user of this account (its name is matched exactly); Terraform stops rather than write the bucket's policy or overwrite rules without that user's UID"
    }
  }
}

resource "alicloud_oss_bucket_versioning" "logs-raw" {
  bucket = "logs-raw"
  status = "Enabled"

  lifecycle {
    prevent_destroy = true
  }
}

resource "alicloud_oss_bucket_overwrite_config" "logs-raw" {
  bucket = "logs-raw"

  rule {
    id     = "permgen-0"
    action = "forbid"
    prefix = "raw/"
    principals {
      principal = ["arn:sts::1234567890123456:assumed-role/EtlRole/*"]
    }
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Replication: one resource per rule of the spec (action ALL, as permgen apply writes it).
# Rules the bucket has beyond these are left alone; permgen apply removes them only with
# --allow-remove-replication logs-raw.

# A rule without location: replicates to the provider's region, as permgen apply uses its
# --region.
data "alicloud_regions" "logs-raw_region" {
  current = true
}

resource "alicloud_oss_bucket_replication" "logs-raw_to_logs-dr" {
  bucket = "logs-raw"
  action = "ALL"

  destination {
    bucket   = "logs-dr"
    location = "oss-${data.alicloud_regions.logs-raw_region.ids[0]}"
  }

  prefix_set {
    prefixes = ["raw/"]
  }

  lifecycle {
    prevent_destroy = true
  }
}

# Not expressed: lifecycle rules (expire objects under "tmp/" after 7 days). The official
# alicloud provider sets lifecycle rules only inside alicloud_oss_bucket, a resource that
# creates and deletes the bucket itself, which permgen never manages; it has no standalone
# lifecycle resource (docs/unconfirmed.md). permgen apply writes these rules.

resource "alicloud_oss_bucket_policy" "logs-raw" {
  bucket = "logs-raw"
  policy = jsonencode({
    "Version" : "1",
    "Statement" : [
      {
        "Principal" : [
          data.alicloud_ram_users.logs-raw_user_analytics-bot.users[0].id,
          "1111111111111111"
        ],
        "Effect" : "Allow",
        "Action" : [
          "oss:GetObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:logs-raw/exports/*"
        ],
        "Condition" : {
          "StringEquals" : {
            "acs:SourceVpc" : [
              "vpc-bp1logs01"
            ]
          }
        }
      },
      {
        "Principal" : [
          "*"
        ],
        "Effect" : "Allow",
        "Action" : [
          "oss:GetObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:logs-raw/public/*"
        ],
        "Condition" : {
          "StringEquals" : {
            "acs:SourceVpc" : [
              "vpc-bp1logs01"
            ]
          }
        }
      },
      {
        "Principal" : [
          "*"
        ],
        "Effect" : "Deny",
        "Action" : [
          "oss:DeleteObject",
          "oss:DeleteObjectVersion"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:logs-raw",
          "acs:oss:*:1234567890123456:logs-raw/*"
        ]
      }
    ]
  })

  lifecycle {
    prevent_destroy = true
  }
}
