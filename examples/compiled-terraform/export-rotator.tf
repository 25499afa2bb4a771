resource "alicloud_ram_policy" "export_rotator" {
  policy_name     = "export-rotator"
  description     = "Nightly job that replaces and removes old exports"
  rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
  policy_document = jsonencode({
    "Version" : "1",
    "Statement" : [
      {
        "Effect" : "Deny",
        "Action" : [
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data/exports/*"
        ],
        "Condition" : {
          "StringEquals" : {
            "oss:x-oss-object-acl" : [
              "public-read",
              "public-read-write"
            ]
          }
        }
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:AbortMultipartUpload",
          "oss:DeleteObject",
          "oss:GetObject",
          "oss:GetObjectVersion",
          "oss:ListParts",
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data/exports/*"
        ],
        "Condition" : {
          "Bool" : {
            "acs:SecureTransport" : [
              "true"
            ]
          },
          "IpAddress" : {
            "acs:SourceIp" : [
              "203.0.113.0/24"
            ]
          }
        }
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:ListObjects",
          "oss:ListObjectVersions"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data"
        ],
        "Condition" : {
          "Bool" : {
            "acs:SecureTransport" : [
              "true"
            ]
          },
          "IpAddress" : {
            "acs:SourceIp" : [
              "203.0.113.0/24"
            ]
          },
          "StringLike" : {
            "oss:Prefix" : [
              "exports/*"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_user_policy_attachment" "export_rotator_user_rotator_bot" {
  policy_name = alicloud_ram_policy.export_rotator.policy_name
  policy_type = "Custom"
  user_name   = "rotator-bot"
}
