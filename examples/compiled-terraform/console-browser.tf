resource "alicloud_ram_policy" "console_browser" {
  policy_name     = "console-browser"
  description     = "Browse the reports bucket in the console"
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
          "acs:oss:*:1234567890123456:corp-reports/monthly/*"
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
          "oss:GetBucketInfo"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-reports"
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
          "oss:GetObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:corp-reports/monthly/*"
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
          "oss:ListBuckets"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:*"
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
          "acs:oss:*:1234567890123456:corp-reports"
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
            ],
            "oss:Delimiter" : [
              "/"
            ],
            "oss:Prefix" : [
              ""
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
          "acs:oss:*:1234567890123456:corp-reports"
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
              "monthly/*"
            ]
          }
        }
      }
    ]
  })
}

resource "alicloud_ram_group_policy_attachment" "console_browser_group_finance" {
  policy_name = alicloud_ram_policy.console_browser.policy_name
  policy_type = "Custom"
  group_name  = "finance"
}
