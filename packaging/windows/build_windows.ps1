# Build SpecChat's Windows installer into dist\ (run from the repository root):
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1
# Needs: Python 3.11 with `pip install -e ".[packaging]"`, Inno Setup 6 (iscc on PATH).
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
Set-Location $Root
$Version = (python -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])").Trim()
$Work = "$Root\build\windows"
$Bundle = "$Work\pyinstaller\specchat"

Write-Host "== PyInstaller bundle (SpecChat $Version)"
python -m PyInstaller --noconfirm --log-level WARN --distpath "$Work\pyinstaller" --workpath "$Work\pyinstaller-work" packaging\specchat.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

# llama.cpp's DLLs need the MSVC runtime and OpenMP (vcomp140.dll); a user's PC may have
# neither, so the bundle carries them next to llama.dll and python311.dll.
$Runtime = @("vcruntime140.dll", "vcruntime140_1.dll", "msvcp140.dll", "vcomp140.dll")
foreach ($dll in $Runtime) {
    if (-not (Get-ChildItem -Path $Bundle -Recurse -Filter $dll -ErrorAction SilentlyContinue)) {
        Copy-Item "$env:WINDIR\System32\$dll" "$Bundle\_internal\" -ErrorAction Stop
        Write-Host "added $dll from System32"
    }
}

Write-Host "== self-test of the bundle (fresh home)"
$TestHome = Join-Path $env:RUNNER_TEMP "specchat-selftest"
if (-not $env:RUNNER_TEMP) { $TestHome = Join-Path $env:TEMP "specchat-selftest" }
$env:SPECCHAT_HOME = $TestHome
# A windowed exe has no console: its output goes to SPECCHAT_HOME\logs\specchat-output.log.
$process = Start-Process -FilePath "$Bundle\specchat.exe" -ArgumentList "--self-test" -Wait -PassThru -NoNewWindow
Get-Content "$TestHome\logs\specchat-output.log" -ErrorAction SilentlyContinue
Remove-Item Env:\SPECCHAT_HOME
if ($process.ExitCode -ne 0) { throw "self-test failed with exit code $($process.ExitCode)" }

Write-Host "== Inno Setup installer"
iscc "/DAppVersion=$Version" "/DBundleDir=$Bundle" packaging\windows\specchat.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Get-ChildItem "$Root\dist"
