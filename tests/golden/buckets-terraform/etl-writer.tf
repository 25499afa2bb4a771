resource "alicloud_ram_policy" "etl_writer" {
  policy_name     = "etl-writer"
  description     = "The ETL job writes raw logs."
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
          "acs:oss:*:1234567890123456:logs-raw/raw/*"
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
          "oss:GetObject",
          "oss:ListParts",
          "oss:PutObject"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:logs-raw/raw/*"
        ]
      },
      {
        "Effect" : "Allow",
        "Action" : [
          "oss:ListObjects"
        ],
        "Resource" : [
          "acs:oss:*:1234567890123456:logs-raw"
        ],
        "Condition" : {
          "StringLike" : {
            "oss:Prefix" : [
              "raw/*"
            ]
          }
        }
      }
    ]
  })
}
