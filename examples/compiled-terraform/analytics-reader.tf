resource "alicloud_ram_policy" "analytics_reader" {
  policy_name     = "analytics-reader"
  description     = "Read analytics exports"
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
          "acs:oss:*:1234567890123456:corp-data/exports/analytics/*",
          "acs:oss:*:1234567890123456:corp-data/exports/shared/*"
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
          "oss:GetObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-data/exports/analytics/*",
          "acs:oss:*:1234567890123456:corp-data/exports/shared/*"
        ],
        "Condition" : {
          "Bool" : {
            "acs:SecureTransport" : [
              "true"
            ]
          },
          "StringEquals" : {
            "acs:SourceVpc" : [
              "vpc-bp1corpdata01"
            ]
          }
        }
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:ListObjects"
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
          "StringEquals" : {
            "acs:SourceVpc" : [
              "vpc-bp1corpdata01"
            ]
          },
          "StringLike" : {
            "oss:Prefix" : [
              "exports/analytics/*",
              "exports/shared/*"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_group_policy_attachment" "analytics_reader_group_analysts" {
  policy_name = alicloud_ram_policy.analytics_reader.policy_name
  policy_type = "Custom"
  group_name  = "analysts"
}

resource "alicloud_ram_user_policy_attachment" "analytics_reader_user_analytics_bot" {
  policy_name = alicloud_ram_policy.analytics_reader.policy_name
  policy_type = "Custom"
  user_name   = "analytics-bot"
}
