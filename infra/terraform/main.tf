# An AWS S3 bucket for custody's evidence: Object Lock with a default COMPLIANCE retention,
# versioning, no public access, the least-privilege bucket policy (./policies, the same
# document as infra/s3-policies/bucket-policy.json) and the IAM roles it names: a station role
# (put and lock, never delete) and an auditor role (read only).
#
#   terraform init && terraform apply -var bucket=city-bwc-evidence \
#     -var 'station_trusted=["arn:aws:iam::123456789012:root"]' \
#     -var 'auditor_trusted=["arn:aws:iam::123456789012:root"]'

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "bucket" {
  type        = string
  description = "Name of the evidence bucket."
}

variable "default_retention_days" {
  type        = number
  default     = 90
  description = "Default COMPLIANCE retention of every object (custody's 'unflagged' category: 50 ILCS 706/10-20)."
}

variable "station_trusted" {
  type        = list(string)
  description = "Principals (ARNs) allowed to assume the station role."
}

variable "auditor_trusted" {
  type        = list(string)
  description = "Principals (ARNs) allowed to assume the auditor role."
}

resource "aws_s3_bucket" "evidence" {
  bucket              = var.bucket
  object_lock_enabled = true
}

resource "aws_s3_bucket_versioning" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.default_retention_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.evidence]
}

resource "aws_s3_bucket_public_access_block" "evidence" {
  bucket                  = aws_s3_bucket.evidence.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "assume_station" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.station_trusted
    }
  }
}

data "aws_iam_policy_document" "assume_auditor" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = var.auditor_trusted
    }
  }
}

resource "aws_iam_role" "station" {
  name               = "${var.bucket}-station"
  assume_role_policy = data.aws_iam_policy_document.assume_station.json
}

resource "aws_iam_role" "auditor" {
  name               = "${var.bucket}-auditor"
  assume_role_policy = data.aws_iam_policy_document.assume_auditor.json
}

module "policies" {
  source            = "./policies"
  bucket            = aws_s3_bucket.evidence.id
  station_principal = aws_iam_role.station.arn
  auditor_principal = aws_iam_role.auditor.arn
}

resource "aws_s3_bucket_policy" "evidence" {
  bucket     = aws_s3_bucket.evidence.id
  policy     = module.policies.bucket_policy
  depends_on = [aws_s3_bucket_public_access_block.evidence]
}

output "bucket" {
  value = aws_s3_bucket.evidence.id
}

output "station_role_arn" {
  value = aws_iam_role.station.arn
}

output "auditor_role_arn" {
  value = aws_iam_role.auditor.arn
}
