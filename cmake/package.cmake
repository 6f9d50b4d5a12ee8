# The Debian package (`make deb`, README "Run it as a service"): CPack's DEB
# generator makes build/lastframe_VERSION_ARCH.deb of
#   /usr/bin/lastframe                    (install(TARGETS) in src/app, stripped)
#   /etc/lastframe/lastframe.toml         a conffile: listen, data-dir, comments
#   /lib/systemd/system/lastframe.service the unit, hardened, as user lastframe
# with the maintainer scripts of deploy/debian/ (postinst makes the lastframe
# system user and /var/lib/lastframe). Depends: what dpkg-shlibdeps finds the
# binary links (dpkg-dev), and adduser for postinst. tests/package checks it.

set(LASTFRAME_DEB_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
install(FILES ${LASTFRAME_DEB_DIR}/lastframe.toml DESTINATION /etc/lastframe
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${LASTFRAME_DEB_DIR}/lastframe.service DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# `cpack` (and `ninja install`) install what is built, without building all of
# the tests and benchmarks first: `make deb` builds the lastframe target, and
# tests/package runs after the build.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME lastframe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "the newest frame of any live stream, as a signed URL")
set(CPACK_PACKAGE_DESCRIPTION
    "A snapshot service: cameras push (Kinesis Video PutMedia) or are pulled (RTSP, RTMP, SRT, HTTP); any stream's newest frame is answered as an image on an S3 store, by a signed URL.")
set(CPACK_PACKAGE_CONTACT "lastframe maintainers <maintainers@lastframe.invalid>"
    CACHE STRING "the Debian package's Maintainer")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # lastframe_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION video)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${LASTFRAME_DEB_DIR}/postinst ${LASTFRAME_DEB_DIR}/prerm ${LASTFRAME_DEB_DIR}/postrm
    ${LASTFRAME_DEB_DIR}/conffiles)
# Maintainer scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
