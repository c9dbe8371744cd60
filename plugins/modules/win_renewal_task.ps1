#!powershell
# Copyright: (c) 2026, pki.est developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Thin layer: files, the compiler and the scheduled task. What the client does is C# (EstWin.cs, RenewalRunner).

$spec = @{
    options = @{
        state = @{ type = 'str'; choices = 'present', 'absent'; default = 'present' }
        certificates = @{
            type = 'list'; elements = 'dict'; default = @()
            options = @{
                name = @{ type = 'str'; required = $true }
                url = @{ type = 'str'; required = $true }
                ca_label = @{ type = 'str' }
                certificate = @{ type = 'str'; required = $true }
                friendly_name = @{ type = 'str' }
                store_location = @{ type = 'str'; choices = 'LocalMachine', 'CurrentUser'; default = 'LocalMachine' }
                store_name = @{ type = 'str'; default = 'My' }
                renew_before = @{ type = 'str'; default = '33%' }
                rekey = @{ type = 'bool'; default = $false }
                key_type = @{ type = 'str'; choices = 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384' }
                key_storage = @{ type = 'str'; choices = 'software', 'tpm'; default = 'software' }
                timeout = @{ type = 'int'; default = 30 }
            }
        }
        ca_bundle = @{ type = 'str' }
        install_dir = @{ type = 'path'; default = 'C:\ProgramData\pki.est' }
        task_name = @{ type = 'str'; default = 'pki.est renewal' }
        run_times = @{ type = 'list'; elements = 'str'; default = @('00:00', '12:00') }
        random_delay = @{ type = 'int'; default = 60 }
        client_version = @{ type = 'str'; required = $true }
        client_sources = @{ type = 'dict' }
    }
    required_if = @(, @('state', 'present', @('ca_bundle')))
    supports_check_mode = $true
}
$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$check = $module.CheckMode
$installDir = $module.Params.install_dir
$version = $module.Params.client_version
$taskName = $module.Params.task_name
$module.Result.client_version = $version
$module.Result.client_built = $false
$providers = @{ software = 'Microsoft Software Key Storage Provider'; tpm = 'Microsoft Platform Crypto Provider' }

function Write-IfChanged([string]$Path, [string]$Text) {
    # UTF-8 without BOM; written only when the content differs. Returns whether it differs.
    $current = if (Test-Path -LiteralPath $Path) { [System.IO.File]::ReadAllText($Path) } else { $null }
    if ($current -ceq $Text) { return $false }
    if (-not $check) {
        $temp = "$Path.tmp"
        [System.IO.File]::WriteAllText($temp, $Text, (New-Object System.Text.UTF8Encoding $false))
        Move-Item -LiteralPath $temp -Destination $Path -Force
    }
    return $true
}

if ($module.Params.state -eq 'absent') {
    if (Get-ScheduledTask -TaskName $taskName -ErrorAction SilentlyContinue) {
        if (-not $check) { Unregister-ScheduledTask -TaskName $taskName -Confirm:$false }
        $module.Result.changed = $true
    }
    if (Test-Path -LiteralPath $installDir) {
        if (-not $check) { Remove-Item -LiteralPath $installDir -Recurse -Force }
        $module.Result.changed = $true
    }
    $module.ExitJson()
}

foreach ($time in $module.Params.run_times) {
    if ($time -notmatch '^([01][0-9]|2[0-3]):[0-5][0-9]$') {
        $module.Result.error_kind = 'invalid_input'
        $module.FailJson("run_times holds HH:MM times of day, got '$time'")
    }
}

# The client: bin\<version>\PkiEstRenew.exe, compiled from the sources the action plugin sends when it is missing.
$binRoot = Join-Path $installDir 'bin'
$versionDir = Join-Path $binRoot $version
$exe = Join-Path $versionDir 'PkiEstRenew.exe'
if (-not (Test-Path -LiteralPath $exe)) {
    if ($null -eq $module.Params.client_sources) {
        $module.Result.sources_needed = $true
        $module.ExitJson()
    }
    $module.Result.client_built = $true
    $module.Result.changed = $true
    if (-not $check) {
        # Compiled beside, then renamed into place: a run killed half way leaves no half-built version behind.
        $building = "$versionDir.building"
        if (Test-Path -LiteralPath $building) { Remove-Item -LiteralPath $building -Recurse -Force }
        New-Item -ItemType Directory -Path $building -Force | Out-Null
        $files = foreach ($name in $module.Params.client_sources.Keys) {
            $path = Join-Path $building $name
            [System.IO.File]::WriteAllText($path, $module.Params.client_sources[$name], (New-Object System.Text.UTF8Encoding $false))
            $path
        }
        try {
            Add-Type -Path $files -OutputType ConsoleApplication -OutputAssembly (Join-Path $building 'PkiEstRenew.exe') `
                -ReferencedAssemblies System.Core.dll
        }
        catch {
            $module.Result.error_kind = 'not_supported'
            $module.FailJson("the renewal client did not compile (.NET Framework 4.7.2 or later is needed): $($_.Exception.Message)", $_)
        }
        Move-Item -LiteralPath $building -Destination $versionDir
    }
}

# Config and trust: one JSON per certificate, the CA bundle beside them; configs of entries no longer listed go.
if (-not $check -and -not (Test-Path -LiteralPath $installDir)) { New-Item -ItemType Directory -Path $installDir | Out-Null }
$caPath = Join-Path $installDir 'ca.pem'
if (Write-IfChanged $caPath $module.Params.ca_bundle) { $module.Result.changed = $true }
$configs = @()
$actions = @()
foreach ($entry in $module.Params.certificates) {
    if ($entry.name -notmatch '^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$') {
        $module.Result.error_kind = 'invalid_input'
        $module.FailJson("certificate name '$($entry.name)' must be letters, digits and _ . @ + = - (it names a file)")
    }
    $config = [ordered]@{
        url = $entry.url; ca_path = $caPath; certificate = $entry.certificate
        store_location = $entry.store_location; store_name = $entry.store_name; renew_before = $entry.renew_before
        rekey = $entry.rekey; key_provider = $providers[$entry.key_storage]; timeout = $entry.timeout
    }
    if ($entry.ca_label) { $config.ca_label = $entry.ca_label }
    if ($entry.key_type) { $config.key_type = $entry.key_type }
    if ($entry.friendly_name) { $config.friendly_name = $entry.friendly_name }
    $path = Join-Path $installDir "renewal-$($entry.name).json"
    if (Write-IfChanged $path ($config | ConvertTo-Json)) { $module.Result.changed = $true }
    $configs += $path
    $actions += New-ScheduledTaskAction -Execute (Join-Path $binRoot "current\PkiEstRenew.exe") -Argument "--config `"$path`""
}
$module.Result.configs = $configs
if (Test-Path -LiteralPath $installDir) {
    foreach ($old in Get-ChildItem -LiteralPath $installDir -Filter 'renewal-*.json') {
        if ($configs -notcontains $old.FullName) {
            if (-not $check) { Remove-Item -LiteralPath $old.FullName -Force }
            $module.Result.changed = $true
        }
    }
}

# bin\current points at this version (a directory junction, turned only once the version is complete); earlier
# versions go afterwards.
$current = Join-Path $binRoot 'current'
$target = if (Test-Path -LiteralPath $current) { (Get-Item -LiteralPath $current).Target } else { $null }
if ("$target" -ne $versionDir) {
    $module.Result.changed = $true
    if (-not $check) {
        if (Test-Path -LiteralPath $current) { cmd.exe /c rmdir "$current" | Out-Null }
        New-Item -ItemType Junction -Path $current -Target $versionDir | Out-Null
    }
}
if (Test-Path -LiteralPath $binRoot) {
    foreach ($old in Get-ChildItem -LiteralPath $binRoot -Directory) {
        if ($old.Name -ne $version -and $old.Name -ne 'current') {
            if (-not $check) { Remove-Item -LiteralPath $old.FullName -Recurse -Force }
            $module.Result.changed = $true
        }
    }
}

# The event log source the client writes to.
if (-not [System.Diagnostics.EventLog]::SourceExists('pki.est')) {
    if (-not $check) { New-EventLog -LogName Application -Source 'pki.est' }
    $module.Result.changed = $true
}

# The scheduled task: one action per certificate, a daily trigger per run time, as SYSTEM.
$triggers = foreach ($time in $module.Params.run_times) {
    New-ScheduledTaskTrigger -Daily -At $time -RandomDelay (New-TimeSpan -Minutes $module.Params.random_delay)
}
$wanted = ($actions | ForEach-Object { "$($_.Execute) $($_.Arguments)" }) -join "`n"
$wantedTimes = ($module.Params.run_times | ForEach-Object { $_ }) -join ','
$existing = Get-ScheduledTask -TaskName $taskName -ErrorAction SilentlyContinue
$have = if ($existing) { ($existing.Actions | ForEach-Object { "$($_.Execute) $($_.Arguments)" }) -join "`n" } else { $null }
$haveTimes = if ($existing) { ($existing.Triggers | ForEach-Object { ([datetime]$_.StartBoundary).ToString('HH:mm') }) -join ',' } else { $null }
if ($actions.Count -eq 0) {
    if ($existing) {
        if (-not $check) { Unregister-ScheduledTask -TaskName $taskName -Confirm:$false }
        $module.Result.changed = $true
    }
}
elseif ($have -ne $wanted -or $haveTimes -ne $wantedTimes) {
    if (-not $check) {
        $principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
        $settings = New-ScheduledTaskSettingsSet -StartWhenAvailable -ExecutionTimeLimit (New-TimeSpan -Hours 1)
        Register-ScheduledTask -TaskName $taskName -Action $actions -Trigger $triggers -Principal $principal `
            -Settings $settings -Description 'Renews EST certificates in the Windows store (pki.est)' -Force | Out-Null
    }
    $module.Result.changed = $true
}
$module.ExitJson()
