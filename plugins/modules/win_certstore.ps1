#!powershell
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -CSharpUtil ansible_collections.pki.est.plugins.module_utils.EstWin
#AnsibleRequires -CSharpUtil ansible_collections.pki.est.plugins.module_utils.EstWinPlatform

# Thin layer over the C# in EstWin.cs (parsing, PKCS#10, renewal decision) and EstWinPlatform.cs (the store, CNG
# keys), which are tested with Mono; this file maps options to calls and results.

$spec = @{
    options = @{
        state = @{ type = 'str'; choices = 'present', 'absent', 'request', 'accept', 'query'; default = 'present' }
        store_location = @{ type = 'str'; choices = 'LocalMachine', 'CurrentUser'; default = 'LocalMachine' }
        store_name = @{ type = 'str'; default = 'My' }
        path = @{ type = 'path' }
        content = @{ type = 'str' }
        password = @{ type = 'str'; no_log = $true }
        thumbprint = @{ type = 'str' }
        subject = @{ type = 'str' }
        match_subject = @{ type = 'bool'; default = $false }
        friendly_name = @{ type = 'str' }
        name = @{ type = 'str' }
        subject_alt_name = @{ type = 'list'; elements = 'str' }
        key_usage = @{ type = 'list'; elements = 'str' }
        extended_key_usage = @{ type = 'list'; elements = 'str' }
        key_algorithm = @{ type = 'str'; choices = 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'; default = 'rsa-2048' }
        key_storage = @{ type = 'str'; choices = 'software', 'tpm'; default = 'software' }
        key_exportable = @{ type = 'bool'; default = $false }
        certificate = @{ type = 'str' }
        renew_before = @{ type = 'str'; default = '33%' }
    }
    mutually_exclusive = @(, @('path', 'content'))
    required_if = @(
        @('state', 'request', @('name', 'subject')),
        @('state', 'accept', @('name', 'certificate'))
    )
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
# The C# types, by their full names (loaded by #AnsibleRequires above).
$EstWin = 'ansible_collections.pki.est.plugins.module_utils.EstWin'
$Platform = 'ansible_collections.pki.est.plugins.module_utils.EstWinPlatform'
$X509 = 'System.Security.Cryptography.X509Certificates'
$Pem = [type]"$EstWin.Pem"
$CertFacts = [type]"$EstWin.CertFacts"
$RenewWindow = [type]"$EstWin.RenewWindow"
$RenewalDecision = [type]"$EstWin.RenewalDecision"
$RenewalConfig = [type]"$EstWin.RenewalConfig"
$EstException = [type]"$EstWin.EstException"
$CertificateStore = [type]"$Platform.X509StoreCertificateStore"
$KeyStorageFlags = [type]"$X509.X509KeyStorageFlags"
$p = $module.Params
$check = $module.CheckMode
$providers = @{ software = $RenewalConfig::SoftwareProvider; tpm = $RenewalConfig::PlatformProvider }
$machine = $p.store_location -eq 'LocalMachine'
# Where the name of a request's key is kept until its certificate is accepted (the key itself is in CNG).
$pendingDir = if ($machine) { Join-Path $env:ProgramData 'pki.est\pending' } else { Join-Path $env:LOCALAPPDATA 'pki.est\pending' }

function Fail-With([string]$Kind, [string]$Message) {
    $module.Result.error_kind = $Kind
    $module.FailJson($Message)
}

function Get-EstError([Exception]$Exception) {
    # A .NET exception reaches PowerShell wrapped (MethodInvocationException): the EstException inside.
    $e = $Exception
    while ($e -isnot $EstException -and $null -ne $e.InnerException) { $e = $e.InnerException }
    $e
}

function Get-Store([string]$Name) {
    New-Object $CertificateStore ($CertificateStore::ParseLocation($p.store_location)), $Name
}

function Get-Thumbprints([string]$Name) {
    @((Get-Store $Name).Certificates() | ForEach-Object { $_.Facts.Thumbprint } | Sort-Object)
}

function Read-Input {
    # The certificates of path or content: PEM (one or more), DER, PKCS#7; or PKCS#12 with its keys.
    if ($p.content) { return ,@{ ders = $Pem::ReadCertificates([System.Text.Encoding]::ASCII.GetBytes($p.content)); pfx = $null } }
    if (-not $p.path) { Fail-With 'invalid_input' 'state=present needs path or content' }
    if (-not (Test-Path -LiteralPath $p.path)) { Fail-With 'invalid_input' "$($p.path) does not exist" }
    $bytes = [System.IO.File]::ReadAllBytes($p.path)
    if ($p.path -match '\.(p12|pfx)$' -or $null -ne $p.password) {
        $flags = $KeyStorageFlags::PersistKeySet
        $flags = $flags -bor $(if ($machine) { $KeyStorageFlags::MachineKeySet } else { $KeyStorageFlags::UserKeySet })
        if ($p.key_exportable) { $flags = $flags -bor $KeyStorageFlags::Exportable }
        $collection = New-Object "$X509.X509Certificate2Collection"
        try { $collection.Import($bytes, $p.password, $flags) }
        catch { Fail-With 'invalid_input' "cannot read the PKCS#12 file $($p.path) (wrong password?): $($_.Exception.Message)" }
        return ,@{ ders = $null; pfx = $collection }
    }
    try { return ,@{ ders = $Pem::ReadCertificates($bytes); pfx = $null } }
    catch { Fail-With 'invalid_input' "$($p.path): $((Get-EstError $_.Exception).Message)" }
}

function Get-Selected([object[]]$Certificates) {
    $wanted = if ($p.thumbprint) { $CertFacts::NormalizeThumbprint($p.thumbprint) } else { $null }
    @($Certificates | Where-Object {
            ($wanted -and $_.Facts.Thumbprint -eq $wanted) -or
            ($p.friendly_name -and $_.FriendlyName -ceq $p.friendly_name) -or
            ($p.subject -and $_.Facts.Subject -eq $p.subject)
        })
}

try {
    switch ($p.state) {
        'query' {
            if (-not ($p.thumbprint -or $p.subject -or $p.friendly_name)) {
                Fail-With 'invalid_input' 'state=query needs thumbprint, subject or friendly_name'
            }
            $window = $RenewWindow::Parse($p.renew_before)
            $now = [DateTime]::UtcNow
            $found = foreach ($stored in (Get-Selected (Get-Store $p.store_name).Certificates())) {
                $facts = $stored.Facts
                $decision = $RenewalDecision::Decide($facts.NotBefore, $facts.NotAfter, $window, $now, $false)
                [ordered]@{
                    thumbprint = $facts.Thumbprint; subject = $facts.Subject; issuer = $facts.Issuer
                    not_before = $facts.NotBeforeIso; not_after = $facts.NotAfterIso
                    subject_alt_name = @($facts.SubjectAltNames); friendly_name = $stored.FriendlyName
                    has_private_key = $stored.HasPrivateKey; key_provider = $stored.KeyProvider
                    renewal_due = $decision.Action -ne $RenewalDecision::None
                    days_remaining = [int][Math]::Floor(($facts.NotAfter - $now).TotalDays)
                }
            }
            $module.Result.certificates = @($found | Sort-Object -Property { $_.not_after } -Descending)
        }
        'present' {
            $source = Read-Input
            $before = @{}
            $imported = New-Object System.Collections.Generic.List[string]
            $certs = if ($source.pfx) { @($source.pfx) } else { @($source.ders | ForEach-Object { New-Object "$X509.X509Certificate2" (, [byte[]]$_) }) }
            foreach ($cert in $certs) {
                $target = $p.store_name
                if ($target -eq 'auto') {
                    $target = if ($cert.HasPrivateKey) { 'My' } elseif ($cert.Subject -eq $cert.Issuer) { 'Root' } else { 'CA' }
                }
                if (-not $before.ContainsKey($target)) { $before[$target] = Get-Thumbprints $target }
                if ($before[$target] -contains $cert.Thumbprint) { continue }
                if ($p.friendly_name) { $cert.FriendlyName = $p.friendly_name }
                if (-not $check) { [void](Get-Store $target).Import($cert) }
                $imported.Add($cert.Thumbprint)
            }
            $module.Result.thumbprints = @($imported)
            $module.Result.changed = $imported.Count -gt 0
            if ($module.Result.changed) {
                $module.Diff.before = @{ thumbprints = @($before.Values | ForEach-Object { $_ }) }
                $module.Diff.after = @{ thumbprints = @(($before.Values | ForEach-Object { $_ }) + $imported) }
            }
        }
        'absent' {
            $store = Get-Store $p.store_name
            $all = $store.Certificates()
            if ($p.thumbprint) { $gone = @(Get-Selected $all | Where-Object { $_.Facts.Thumbprint -eq $CertFacts::NormalizeThumbprint($p.thumbprint) }) }
            elseif ($p.subject -and $p.match_subject) { $gone = @($all | Where-Object { $_.Facts.Subject -eq $p.subject }) }
            else { Fail-With 'invalid_input' 'state=absent needs thumbprint, or subject with match_subject=true' }
            foreach ($stored in $gone) {
                if (-not $check) { $store.Remove($stored.Facts.Thumbprint, $false) }
            }
            $module.Result.thumbprints = @($gone | ForEach-Object { $_.Facts.Thumbprint })
            $module.Result.changed = $gone.Count -gt 0
            if ($module.Result.changed) {
                $module.Diff.before = @{ thumbprints = @($all | ForEach-Object { $_.Facts.Thumbprint }) }
                $module.Diff.after = @{ thumbprints = @($all | Where-Object { $gone -notcontains $_ } | ForEach-Object { $_.Facts.Thumbprint }) }
            }
        }
        'request' {
            if ($p.name -notmatch '^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$') {
                Fail-With 'invalid_input' "name '$($p.name)' must be letters, digits and _ . @ + = -"
            }
            # The subject and SANs are checked (a CSR is built and thrown away) before any key is made.
            $builder = New-Object "$EstWin.Pkcs10Builder"
            foreach ($part in ($p.subject -split '(?<!\\),')) {
                $pair = $part.Trim() -split '=', 2
                if ($pair.Count -ne 2 -or -not $pair[0]) { Fail-With 'invalid_input' "subject '$($p.subject)' is not NAME=value,..." }
                [void]$builder.AddSubject($pair[0].Trim(), $pair[1].Replace('\,', ','))
            }
            foreach ($san in @($p.subject_alt_name)) { if ($san) { [void]$builder.AddSubjectAltName($san) } }
            foreach ($usage in @($p.key_usage)) { if ($usage) { [void]$builder.AddKeyUsage($usage) } }
            foreach ($usage in @($p.extended_key_usage)) { if ($usage) { [void]$builder.AddExtendedKeyUsage($usage) } }
            $keys = New-Object "$Platform.CngKeyFactory" $providers[$p.key_storage], $machine
            $marker = Join-Path $pendingDir "$($p.name).json"
            $keyName = $null
            if (Test-Path -LiteralPath $marker) {
                $pending = Get-Content -LiteralPath $marker -Raw | ConvertFrom-Json
                if ($pending.key_storage -eq $p.key_storage) { $keyName = $pending.key_name }
            }
            $reused = $null -ne $keyName -and $keys.Exists($keyName)
            if (-not $reused) {
                $keyName = 'pki-est-{0}-{1}' -f $p.name, [DateTime]::UtcNow.ToString('yyyyMMddHHmmss')
                $module.Result.changed = $true
            }
            $module.Result.reused = $reused
            $module.Result.key_name = $keyName
            if ($check -and -not $reused) { $module.ExitJson() }  # no key made, so no request to show
            if (-not $reused) {
                # The marker first: a run killed after it made the key finds the key again by this name.
                New-Item -ItemType Directory -Path $pendingDir -Force | Out-Null
                @{ key_name = $keyName; key_storage = $p.key_storage; key_algorithm = $p.key_algorithm } | ConvertTo-Json |
                    Set-Content -LiteralPath $marker -Encoding UTF8
            }
            $handle = $keys.CreatePendingKey($keyName, $p.key_algorithm)
            $module.Result.csr = $Pem::Encode('CERTIFICATE REQUEST', $builder.Build($handle.Signer()))
        }
        'accept' {
            $marker = Join-Path $pendingDir "$($p.name).json"
            if (-not (Test-Path -LiteralPath $marker)) {
                Fail-With 'host_state' "there is no pending request named '$($p.name)' (state=request makes one)"
            }
            $pending = Get-Content -LiteralPath $marker -Raw | ConvertFrom-Json
            $keys = New-Object "$Platform.CngKeyFactory" $providers[$pending.key_storage], $machine
            $handle = $keys.OpenKey($pending.key_name)
            if ($null -eq $handle) {
                Fail-With 'host_state' "the key $($pending.key_name) of the pending request '$($p.name)' is gone; run state=request again"
            }
            $ders = $Pem::ReadCertificates([System.Text.Encoding]::ASCII.GetBytes($p.certificate))
            $issued = $ders | Where-Object { $handle.Matches($_) } | Select-Object -First 1
            if ($null -eq $issued) { Fail-With 'key_conflict' "the certificate is not for the key $($pending.key_name)" }
            $facts = $CertFacts::Parse($issued)
            $module.Result.thumbprint = $facts.Thumbprint
            $module.Result.key_name = $pending.key_name
            $store = Get-Store $p.store_name
            if (-not $store.Contains($facts.Thumbprint)) {
                $module.Result.changed = $true
                $module.Diff.before = @{ thumbprints = Get-Thumbprints $p.store_name }
                $module.Diff.after = @{ thumbprints = @($module.Diff.before.thumbprints + $facts.Thumbprint) }
                if (-not $check) { [void]$store.Install($issued, $handle, $p.friendly_name) }
            }
            if (-not $check) { Remove-Item -LiteralPath $marker -Force }
        }
    }
}
catch {
    # An EstException from the C# has a kind (invalid_input, key_store, ...); anything else is a bug to report.
    $e = Get-EstError $_.Exception
    if ($e -isnot $EstException) { throw }
    $module.Result.error_kind = $e.Kind
    $module.FailJson($e.Message)
}
$module.ExitJson()
