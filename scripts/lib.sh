# Shared by the check scripts (sourced, not run).

# apt_install PKG...: installs Debian packages quietly, with sudo unless root.
apt_install() {
  local sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
