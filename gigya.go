package idtoken

import (
	"fmt"
	"net/url"
	"strings"
)

// gigyaDataCenters maps SAP Customer Data Cloud data-center names to their
// API domains. cn1 lives on its own domain.
var gigyaDataCenters = map[string]string{
	"us1":    "us1.gigya.com",
	"eu1":    "eu1.gigya.com",
	"au1":    "au1.gigya.com",
	"eu2":    "eu2.gigya.com",
	"ru1":    "ru1.gigya.com",
	"global": "global.gigya.com",
	"cn1":    "cn1.sapcdm.cn",
}

// defaultDataCenter is used when api_key is given without data_center.
const defaultDataCenter = "us1"

// gigyaBaseURL resolves a data_center value: a known name, an API domain
// (anything with a dot, e.g. cn1.gigya-api.cn), or an http(s) base URL used
// as-is (custom API domains, local tests).
func gigyaBaseURL(dataCenter string) (string, error) {
	if dataCenter == "" {
		dataCenter = defaultDataCenter
	}
	if strings.HasPrefix(dataCenter, "http://") || strings.HasPrefix(dataCenter, "https://") {
		u, err := url.Parse(dataCenter)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("data_center %q is not a valid URL", dataCenter)
		}
		return strings.TrimRight(dataCenter, "/"), nil
	}
	if strings.Contains(dataCenter, ".") {
		if strings.ContainsAny(dataCenter, "/?#@: ") {
			return "", fmt.Errorf("data_center %q is not a domain name", dataCenter)
		}
		return "https://accounts." + dataCenter, nil
	}
	domain, ok := gigyaDataCenters[strings.ToLower(dataCenter)]
	if !ok {
		return "", fmt.Errorf("unknown data_center %q (known: us1, eu1, au1, eu2, ru1, global, cn1; or an API domain or base URL)", dataCenter)
	}
	return "https://accounts." + domain, nil
}

// gigyaKeyURL is where accounts.getJWTPublicKey serves a site's keys. V2=true
// asks for the keys array, as SAP's own SDKs do.
func gigyaKeyURL(apiKey, dataCenter string) (string, error) {
	base, err := gigyaBaseURL(dataCenter)
	if err != nil {
		return "", err
	}
	return base + "/accounts.getJWTPublicKey?apiKey=" + url.QueryEscape(apiKey) + "&V2=true", nil
}

// gigyaIssuers are the iss values accounts.getJWT uses for a site: with a
// trailing slash today, without it on older tokens.
func gigyaIssuers(apiKey string) []string {
	iss := "https://fidm.gigya.com/jwt/" + apiKey
	return []string{iss + "/", iss}
}
