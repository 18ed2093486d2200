; Inno Setup script for SpecChat on Windows: a per-user install (no administrator
; rights), a Start menu entry, an uninstaller. Built by packaging/build_windows.ps1:
;   iscc /DAppVersion=0.1.0 /DBundleDir=..\..\build\windows\pyinstaller\specchat packaging\windows\specchat.iss
; The PyInstaller folder it packs already holds the MSVC runtime (vcruntime140*.dll,
; msvcp140.dll) and OpenMP (vcomp140.dll) that llama.cpp's DLLs need; build_windows.ps1
; copies them in when PyInstaller did not.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\build\windows\pyinstaller\specchat"
#endif

[Setup]
AppId={{6D1F8C8E-5B7A-4C1E-9A52-5EC0C5A7B0D1}
AppName=SpecChat
AppVersion={#AppVersion}
AppPublisher=SpecChat developers
DefaultDirName={autopf}\SpecChat
DefaultGroupName=SpecChat
DisableProgramGroupPage=yes
; Per-user: installs under %LOCALAPPDATA%\Programs without an elevation prompt.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=specchat-{#AppVersion}-windows-x64-setup
SetupIconFile=specchat.ico
UninstallDisplayIcon={app}\specchat.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\SpecChat"; Filename: "{app}\specchat.exe"
Name: "{group}\Uninstall SpecChat"; Filename: "{uninstallexe}"
Name: "{autodesktop}\SpecChat"; Filename: "{app}\specchat.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\specchat.exe"; Description: "{cm:LaunchProgram,SpecChat}"; Flags: nowait postinstall skipifsilent

; The uninstaller removes only {app}: conversations, settings and models live in the
; user's AppData folders (platformdirs) and are left alone.
